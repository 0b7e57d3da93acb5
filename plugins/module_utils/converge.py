# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Read, compare, write: an object is written only when the cluster lacks a wanted field.

`changed` and the diff come from the object before and after, so a second run that finds
everything in place sends no write request at all.
"""

from __future__ import annotations

import copy

from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import labels_of
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import NotFoundError

NOISE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


def contains(live, wanted):
    """True when every field of `wanted` is in `live` with the same value.

    Maps may hold more keys than wanted; lists must match element by element.
    """
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(
            key in live and contains(live[key], value) for key, value in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(live, list) and len(live) == len(wanted)
                and all(contains(a, b) for a, b in zip(live, wanted)))
    return live == wanted


def strip_noise(obj):
    """The object without server bookkeeping, for diffs that show only real changes."""
    if not obj:
        return {}
    clean = copy.deepcopy(obj)
    meta = clean.get("metadata", {})
    for key in NOISE:
        meta.pop(key, None)
    clean.pop("status", None)
    return clean


def without_server_fields(wanted):
    """`wanted` without the metadata only the apiserver sets (a rendered chart's
    `creationTimestamp: null`, say): wanting them would make every run write."""
    meta = wanted.get("metadata") or {}
    if not any(key in meta for key in NOISE):
        return wanted
    clean = dict(wanted)
    clean["metadata"] = dict((key, value) for key, value in meta.items() if key not in NOISE)
    return clean


def object_ref(obj):
    meta = obj["metadata"]
    ref = "%s/%s" % (obj["kind"], meta["name"])
    return "%s/%s" % (meta["namespace"], ref) if meta.get("namespace") else ref


def labels_present(live, names):
    return sorted(name for name in names if name in labels_of(live))


def converge(cluster, wanted, remove_labels=(), existing_only=False):
    """Make `wanted` true on the cluster. Returns (changed, before, after).

    With `existing_only`, an object that does not exist is left absent, also one that is gone
    by the time it would be written (server-side apply would create it again)."""
    wanted = without_server_fields(wanted)
    meta = wanted["metadata"]
    live = cluster.get(wanted["apiVersion"], wanted["kind"], meta["name"], meta.get("namespace"))
    if live is None and existing_only:
        return False, {}, {}
    stale_labels = labels_present(live, remove_labels)
    if live is not None and contains(live, wanted) and not stale_labels:
        return False, live, live
    try:
        after = live if existing_only and contains(live, wanted) else cluster.apply(wanted)
        if stale_labels:
            after = cluster.merge_patch(
                wanted["apiVersion"], wanted["kind"], meta["name"],
                {"metadata": {"labels": dict((name, None) for name in stale_labels)}},
                meta.get("namespace"))
    except NotFoundError:
        if not existing_only:
            raise
        return False, live, {}
    return True, live or {}, after


def remove(cluster, api_version, kind, name, namespace=None):
    """Delete an object if present. Returns (changed, before)."""
    live = cluster.get(api_version, kind, name, namespace)
    if live is None:
        return False, {}
    cluster.delete(api_version, kind, name, namespace)
    return True, live


class Changes(object):
    """What a module changed, as `changed`, a list of object references and Ansible diffs."""

    def __init__(self):
        self.changed_objects = []
        self.diffs = []

    @property
    def changed(self):
        return bool(self.changed_objects)

    def record(self, changed, before, after, ref):
        if not changed:
            return
        self.changed_objects.append(ref)
        self.diffs.append({"before": strip_noise(before), "after": strip_noise(after),
                           "before_header": ref, "after_header": ref})

    def converge(self, cluster, wanted, remove_labels=(), existing_only=False):
        changed, before, after = converge(cluster, wanted, remove_labels, existing_only)
        self.record(changed, before, after, object_ref(wanted))
        return after

    def remove(self, cluster, api_version, kind, name, namespace=None):
        changed, before = remove(cluster, api_version, kind, name, namespace)
        if changed:
            self.record(True, before, {}, object_ref(before))

    def result(self, module, **extra):
        result = dict(changed=self.changed, objects=self.changed_objects, **extra)
        if module._diff:
            result["diff"] = self.diffs
        return result
