# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The rollback of one cluster, decided from the cluster's own state and its upgrade record:
which revision it goes back to, whether there is anything to undo, and what moves.

Pure logic over a MeshSnapshot; a refusal comes before anything is written.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import (
    MeshfleetError,
    cluster_name,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.upgrade_plan import (
    namespaces_to_migrate,
)

# What a plan says to do: nothing (no upgrade reached the cluster), nothing either (it already
# runs the revision it would go back to), or roll back.
NOTHING, ALREADY_THERE, ROLL_BACK = "nothing", "already-there", "roll-back"


class RollbackRefused(MeshfleetError):
    """A rollback meshfleet cannot do, with what to change."""

    def message(self, params):
        return "%s: %s" % (cluster_name(params), self)


def serving_revision(snapshot, stable_tag):
    """The revision the stable tag points at, else the default tag's."""
    return snapshot.tags.get(stable_tag) or snapshot.default_revision


def revision_to_go_back_to(snapshot, current, requested, upgraded_to):
    """The named revision; else, when the recorded upgrade never promoted its revision (it
    failed at the health gate, say), the current one; else the one other installed revision
    ('' when there are several)."""
    if requested:
        return requested
    if upgraded_to and upgraded_to != current:
        return current
    others = sorted(set(snapshot.revisions) - {current})
    return others[0] if len(others) == 1 else ""


def check_back_to(snapshot, current, back_to):
    if not back_to:
        raise RollbackRefused("cannot roll back from %s: installed revisions are %s; name the one "
                              "to go back to with meshfleet_rollback_revision"
                              % (current, ", ".join(sorted(snapshot.revisions))))
    revision = snapshot.revisions.get(back_to)
    if not (revision and revision.get("ready")):
        raise RollbackRefused("cannot roll back from %s: revision %s is not installed (pruned?) "
                              "or not Ready; nothing to roll back to" % (current, back_to))


def runs_only(snapshot, revision):
    """Whether every stable gateway Service and every injected pod is on `revision`."""
    return (all(s["serving_revision"] == revision for s in snapshot.gateway_services())
            and set(snapshot.pods_by_revision()) <= {revision})


def plan(snapshot, stable_tag="prod-stable", canary_tag="prod-canary", requested=""):
    """The rollback of this cluster to `requested` (a revision), or to the revision from before
    its last recorded upgrade when `requested` is empty."""
    current = serving_revision(snapshot, stable_tag)
    upgraded_to = snapshot.upgrade_record().get("revision", "")
    result = {"action": NOTHING, "current_revision": current, "back_to": "",
              "upgraded_to": upgraded_to, "namespaces": [], "gateway_services": [],
              "record_revision": "", "current_version": ""}
    if not requested and set(snapshot.revisions) <= {current} and upgraded_to != current:
        result["detail"] = ("only %s is installed and no upgrade to it is recorded; nothing to "
                            "roll back" % current if snapshot.revisions
                            else "no Istio revision is installed; nothing to roll back")
        return result
    back_to = revision_to_go_back_to(snapshot, current, requested, upgraded_to)
    check_back_to(snapshot, current, back_to)
    result["back_to"] = back_to
    if current == back_to and runs_only(snapshot, back_to):
        result.update(action=ALREADY_THERE, detail="already runs %s" % back_to)
        return result
    result.update(
        action=ROLL_BACK,
        detail="from %s back to %s" % (current, back_to),
        current_version=snapshot.revisions.get(current, {}).get("version", ""),
        # The namespaces the upgrade would move, by the same rule: injection turned off stays off.
        namespaces=namespaces_to_migrate(snapshot, (stable_tag, canary_tag, current)),
        gateway_services=[{"name": s["name"], "namespace": s["namespace"]}
                          for s in snapshot.gateway_services()],
        # The upgrade left behind: the current revision, or the recorded one when the upgrade
        # never got as far as promoting it.
        record_revision=current if back_to != current else (upgraded_to or current))
    return result
