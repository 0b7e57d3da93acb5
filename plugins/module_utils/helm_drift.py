# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The mesh's Helm releases as helm stores them, and what is wrong with them: a release left
pending or failed, a release changed by hand after meshfleet deployed it (`helm upgrade
--reuse-values --set ...`, `helm rollback`).

meshfleet describes every revision it deploys (`helm upgrade --description "meshfleet: ..."`),
so a newer revision without that description was made by someone else; its values are compared
with those of meshfleet's last revision.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils import helm_record
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import meta_of

DESCRIPTION_PREFIX = "meshfleet: "
DEPLOYED = "deployed"
HISTORY_READ = 10  # revisions walked back to find meshfleet's last one (helm keeps 10)


def made_by_meshfleet(release):
    return ((release.get("info") or {}).get("description") or "").startswith(DESCRIPTION_PREFIX)


def _revisions_by_release(api, namespace):
    """{release name: [revision Secret names, newest first]} from one metadata-only LIST."""
    found = {}
    for secret in api.list("v1", "Secret", namespace, label_selector="owner=helm",
                           metadata_only=True).get("items") or []:
        labels = meta_of(secret).get("labels") or {}
        if labels.get("name"):
            found.setdefault(labels["name"], []).append(
                (helm_record.revision_of(secret), meta_of(secret)["name"]))
    return dict((name, [entry[1] for entry in sorted(entries, reverse=True)])
                for name, entries in found.items())


def _release_of(api, namespace, secret_name):
    return helm_record.decode(api.get("v1", "Secret", secret_name, namespace))


def read_releases(api, namespaces):
    """Each release in `namespaces`: its newest revision and, when someone else made that one,
    meshfleet's last revision before it (None if there is none in the kept history)."""
    releases = []
    for namespace in sorted(set(namespaces)):
        for name, secrets in sorted(_revisions_by_release(api, namespace).items()):
            newest = _release_of(api, namespace, secrets[0])
            ours = None
            if not made_by_meshfleet(newest):
                for secret in secrets[1:HISTORY_READ]:
                    older = _release_of(api, namespace, secret)
                    if made_by_meshfleet(older):
                        ours = older
                        break
            releases.append({"newest": newest, "meshfleet_last": ours})
    return releases


def changed_paths(before, after, prefix=""):
    """Dotted paths of the values that differ between two values trees."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [path for key in sorted(set(before) | set(after), key=str)
                for path in changed_paths(before.get(key), after.get(key),
                                          "%s%s." % (prefix, key))]
    return [] if before == after else [prefix.rstrip(".") or "(all values)"]


def summary(entry):
    """A release's facts as mesh_info reports them."""
    newest, ours = entry["newest"], entry["meshfleet_last"]
    meta = helm_record.metadata(newest)
    fact = {"name": meta["name"], "namespace": meta["namespace"], "revision": meta["revision"],
            "status": meta["status"], "chart": meta["chart"], "version": meta["version"],
            "description": (newest.get("info") or {}).get("description", ""),
            "made_by_meshfleet": made_by_meshfleet(newest), "changed_outside": None}
    if ours is not None:
        fact["changed_outside"] = {
            "meshfleet_revision": ours.get("version"),
            "values_changed": changed_paths(helm_record.values(ours),
                                            helm_record.values(newest)),
            "chart_before": helm_record.metadata(ours)["version"]}
    return fact


def problems(releases):
    """What status reports about the releases (each with the way out). A base chart rolled
    back by hand is a revision changed outside meshfleet like any other, its chart named."""
    found = []
    for release in releases:
        where = "Helm release %s/%s" % (release["namespace"], release["name"])
        if release["status"] != DEPLOYED:
            found.append("%s is %s (revision %s): helm refuses to upgrade it until it is "
                         "recovered; install.yml or upgrade.yml recovers it"
                         % (where, release["status"], release["revision"]))
        changed = release["changed_outside"]
        if changed:
            what = ", ".join(changed["values_changed"]) or "no values"
            if changed["chart_before"] != release["version"]:
                what += "; chart %s -> %s" % (changed["chart_before"], release["version"])
            found.append("%s was changed outside meshfleet: revision %s (%r) after meshfleet's "
                         "revision %s changed %s; install.yml puts meshfleet's values back (make "
                         "a wanted change in the fleet spec instead)"
                         % (where, release["revision"], release["description"],
                            changed["meshfleet_revision"], what))
    return found
