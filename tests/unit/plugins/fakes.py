"""The unit tests' stand-ins: the one in-memory cluster (the methods of kube.Cluster, over
objects keyed by kind, namespace and name, recording every write; in check mode a write returns
what the server would return and stores nothing, as a dry run does) and a clock that moves only
when slept on."""

import copy

from ansible_collections.meshfleet.istio.plugins.module_utils.kube import NotFoundError
from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import (
    selector_matches,
)


def key_of(obj):
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace"), meta["name"]


def merged(base, patch):
    """RFC 7386 JSON merge patch, as the apiserver applies a merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(base) if isinstance(base, dict) else {}
    for field, value in patch.items():
        if value is None:
            result.pop(field, None)
        else:
            result[field] = merged(result.get(field), value)
    return result


def parse_selector(text):
    """A label selector string of `key=value` terms (all the unit tests use)."""
    return {"matchLabels": dict(term.split("=", 1) for term in text.split(","))} if text else {}


class FakeCluster(object):
    """`vanish`: (kind, namespace, name) keys deleted by someone else right after a read."""

    def __init__(self, objects=(), check_mode=False, vanish=()):
        self.objects = dict((key_of(o), o) for o in objects)
        self.check_mode = check_mode
        self.vanish = set(vanish)
        self.writes = []  # (verb, kind, namespace, name, body)

    def get(self, api_version, kind, name, namespace=None):
        key = (kind, namespace, name)
        found = self.objects.get(key)
        if key in self.vanish:
            self.objects.pop(key, None)
        return found

    def list(self, api_version, kind, namespace=None, label_selector=None, metadata_only=False):
        selector = parse_selector(label_selector)
        by_place = sorted(self.objects.items(), key=lambda item: item[0][1:])
        return [obj for (its_kind, its_namespace, name), obj in by_place
                if its_kind == kind and namespace in (None, its_namespace)
                and selector_matches(selector, obj["metadata"].get("labels") or {})]

    def _store(self, obj):
        if not self.check_mode:
            self.objects[key_of(obj)] = obj
        return obj

    def written(self):
        """The writes without their bodies."""
        return [write[:4] for write in self.writes]

    def apply(self, body, force=True):
        self.writes.append(("apply",) + key_of(body) + (body,))
        return self._store(copy.deepcopy(body))

    def merge_patch(self, api_version, kind, name, patch, namespace=None):
        key = (kind, namespace, name)
        self.writes.append(("patch",) + key + (patch,))
        if key not in self.objects:
            raise NotFoundError(404, "Not Found", "", "PATCH %s %s/%s" % (kind, namespace, name))
        return self._store(merged(copy.deepcopy(self.objects[key]), patch))

    def delete(self, api_version, kind, name, namespace=None):
        key = (kind, namespace, name)
        self.writes.append(("delete",) + key + (None,))
        if key not in self.objects:
            return False
        if not self.check_mode:
            del self.objects[key]
        return True


class FakeClock(object):
    """time.monotonic (called, or as `monotonic()`) and time.sleep, with no real waiting."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
