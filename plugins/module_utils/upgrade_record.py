# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Each cluster's record of its last upgrade, and the canary gate that reads it.

The record is a ConfigMap beside the run lock. The canary gate lets a cluster outside the
canary wave be changed only once every canary cluster records a passed upgrade to the same
revision. It is read from the canary clusters themselves, because a sliced controller job (or
a run limited to later waves) cannot see the canary hosts or their results.
"""

from __future__ import annotations

import datetime
import json

RECORD_API = "v1"
RECORD_NAMESPACE = "kube-system"
RECORD_NAME = "meshfleet-upgrade"
PHASES = ("started", "passed", "failed", "rolled-back")
# The record keeps its last transitions (oldest first) in the data key `history`, as JSON.
HISTORY_KEY = "history"
HISTORY_LIMIT = 20
TRANSITION_KEYS = ("revision", "phase", "run_id", "updated")


STAMP = "%Y-%m-%dT%H:%M:%SZ"


def record_body(revision, phase, run_id, previous=None):
    """The record naming this transition, its history being `previous`'s (the ConfigMap as read,
    or None) plus this transition, the last HISTORY_LIMIT kept."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(STAMP)
    current = {"revision": revision, "phase": phase, "run_id": run_id, "updated": stamp}
    history = (history_of(previous) + [current])[-HISTORY_LIMIT:]
    data = dict(current)
    data[HISTORY_KEY] = json.dumps(history, separators=(",", ":"))
    return {"apiVersion": RECORD_API, "kind": "ConfigMap",
            "metadata": {"name": RECORD_NAME, "namespace": RECORD_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "meshfleet"}},
            "data": data}


def record_of(configmap):
    """The record's current fields ({} when the cluster has none), without its history."""
    data = (configmap or {}).get("data") or {}
    return dict((key, value) for key, value in data.items() if key != HISTORY_KEY)


def history_of(configmap):
    """The record's transitions, oldest first. A record written before histories were kept
    counts its current fields as its one transition; an unreadable history counts as none."""
    data = (configmap or {}).get("data") or {}
    if HISTORY_KEY not in data:
        current = record_of(configmap)
        if not (current.get("revision") and current.get("phase")):
            return []
        entries = [current]
    else:
        try:
            entries = json.loads(data[HISTORY_KEY])
        except (TypeError, ValueError):
            return []
    if not isinstance(entries, list):
        return []
    return [dict((key, str(entry.get(key, ""))) for key in TRANSITION_KEYS)
            for entry in entries if isinstance(entry, dict)]


def record_facts(configmap):
    """The record as facts: its current fields and its history ({} when there is no record)."""
    current = record_of(configmap)
    if not current:
        return {}
    return dict(current, history=history_of(configmap))


def needs_write(current, revision, phase):
    """A record already naming this revision and phase stays as it is (no write on reruns)."""
    return current.get("revision") != revision or current.get("phase") != phase


class CanaryRecord(object):
    """What one canary cluster says about its upgrade (or why it could not be read)."""

    def __init__(self, context, record=None, error=None):
        self.context = context
        self.record = record or {}
        self.error = error

    def describe(self):
        if self.error:
            return "%s: unreadable (%s)" % (self.context, self.error)
        if not self.record:
            return "%s: no upgrade recorded" % self.context
        return "%s: %s %s (run %s, %s)" % (
            self.context, self.record.get("phase"), self.record.get("revision"),
            self.record.get("run_id"), self.record.get("updated"))

    def as_dict(self):
        return dict(context=self.context, error=self.error or "", **self.record)


def gate_state(canaries, revision, since=None):
    """`open` when every canary passed an upgrade to `revision`; `closed` when one of them
    failed it or was rolled back from it (waiting cannot help); `waiting` otherwise.

    A failure or rollback recorded before `since` (UTC, as in the record) comes from an earlier
    run; a run going on now, such as another slice of this job, may be upgrading that canary
    again, so it counts as waiting."""
    if not canaries:
        return "open"
    for canary in canaries:
        record = canary.record
        if (record.get("revision") == revision and record.get("phase") in ("failed", "rolled-back")
                and (since is None or record.get("updated", "") >= since)):
            return "closed"
    if all(c.record.get("revision") == revision and c.record.get("phase") == "passed"
           for c in canaries):
        return "open"
    return "waiting"


def gate_message(cluster, revision, canaries):
    return ("%s: the canary wave has not passed an upgrade to %s, so this cluster is not changed: "
            "%s. Upgrade the canary clusters first (meshfleet_canary_hosts), or let this run wait "
            "for them with meshfleet_canary_wait (seconds)." % (
                cluster, revision, "; ".join(c.describe() for c in canaries)))
