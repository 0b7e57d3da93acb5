# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Replacing one workload's pods and waiting for it: a rollout restart awaited as
`kubectl rollout status` awaits it, or evictions pod by pod. A refused eviction (429: a
PodDisruptionBudget allows no disruption now) is retried until the timeout. Each eviction waits
until every pod of the workload is Ready and the previous evicted pod has a Ready replacement;
StatefulSet pods go highest ordinal first.
"""

from __future__ import annotations

import datetime

from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    meta_of,
    spec_of,
    status_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.pod_readiness import (
    is_ready,
    is_terminating,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_plan import (
    MigrationError,
    count_revisions,
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
PENDING, RUNNING, DONE, TIMED_OUT, SKIPPED = "pending", "running", "done", "timed-out", "skipped"
# What WorkloadApi.evict answers.
EVICTED, REFUSED, GONE = "evicted", "refused", "gone"


# ---------------------------------------------------------------- progress, as kubectl judges it

def _generation_seen(obj):
    return (status_of(obj).get("observedGeneration") or 0) >= (meta_of(obj).get("generation") or 0)


def rollout_progress(obj):
    """(done, counts) for a Deployment, StatefulSet or DaemonSet, as `kubectl rollout status`
    decides it."""
    kind, spec, status = obj["kind"], spec_of(obj), status_of(obj)
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled") or 0
        counts = {"desired": desired, "updated": status.get("updatedNumberScheduled") or 0,
                  "ready": status.get("numberReady") or 0,
                  "available": status.get("numberAvailable") or 0}
        done = counts["updated"] >= desired and counts["available"] >= desired
        return _generation_seen(obj) and done, counts
    desired = spec.get("replicas", 1)
    counts = {"desired": desired, "updated": status.get("updatedReplicas") or 0,
              "ready": status.get("readyReplicas") or 0,
              "available": status.get("availableReplicas") or 0}
    if kind == "Deployment":
        done = (counts["updated"] >= desired and (status.get("replicas") or 0) <= counts["updated"]
                and counts["available"] >= counts["updated"])
        return _generation_seen(obj) and done, counts
    partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
    if partition:
        updated = counts["updated"] >= desired - partition
    else:
        updated = status.get("updateRevision") == status.get("currentRevision")
    return _generation_seen(obj) and counts["ready"] >= desired and updated, counts


def desired_pods(obj):
    if obj["kind"] == "DaemonSet":
        return status_of(obj).get("desiredNumberScheduled") or 0
    return spec_of(obj).get("replicas", 1)


def settled(pods, desired, evicted_uids=()):
    """True when the workload runs `desired` pods, none terminating or evicted, all Ready."""
    live = [pod for pod in pods
            if not is_terminating(pod) and meta_of(pod).get("uid") not in evicted_uids]
    return len(live) >= desired and all(is_ready(pod) for pod in live)


def ordinal(pod):
    try:
        return int(meta_of(pod)["name"].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def eviction_order(kind, pods):
    """StatefulSet pods highest ordinal first (as its controller replaces them), others by name."""
    if kind == "StatefulSet":
        return sorted(pods, key=ordinal, reverse=True)
    return sorted(pods, key=lambda pod: meta_of(pod)["name"])


def restart_patch(when):
    """What `kubectl rollout restart` writes, at time `when` (a datetime)."""
    stamp = when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


# ---------------------------------------------------------------- driving one workload

class Replacement(object):
    """One workload's move: start(), then step() until it is no longer running."""

    def __init__(self, api, move, revision, timeout):
        self.api = api
        self.move = move
        self.revision = revision
        self.timeout = timeout
        self.state = PENDING
        self.started = self.finished = None
        self.progress = {}
        self.evicted = 0
        self.refused = 0
        self.revisions_after = {}
        self.skipped_because = None
        self.wrote = False

    @property
    def running(self):
        return self.state == RUNNING

    def start(self, now):
        self.started = now
        self.state = RUNNING
        self.begin()

    def step(self, now):
        if not self.running:
            return
        if self.advance():
            self.state, self.finished = DONE, now
            self.revisions_after = count_revisions(
                [p for p in self.api.pods_of(self.current()) if not is_terminating(p)])
        elif now - self.started >= self.timeout:
            self.state, self.finished = TIMED_OUT, now

    def skip(self, because):
        self.state, self.skipped_because = SKIPPED, because

    def current(self):
        live = self.api.workload(self.move.kind, self.move.name, self.move.namespace)
        if live is None:
            raise MigrationError("%s disappeared while it was being restarted" % self.move.ref)
        return live

    @property
    def duration(self):
        if self.started is None or self.finished is None:
            return 0.0
        return round(self.finished - self.started, 1)

    def begin(self):
        raise NotImplementedError

    def advance(self):
        """Move on if possible; True once the workload runs only replaced pods."""
        raise NotImplementedError


class RolloutRestart(Replacement):
    def begin(self):
        self.api.restart(self.move.workload, datetime.datetime.now(datetime.timezone.utc))
        self.wrote = True

    def advance(self):
        done, self.progress = rollout_progress(self.current())
        return done


class PodByPodEviction(Replacement):
    def begin(self):
        self.queue = eviction_order(self.move.kind, self.move.pods)
        self.evicted_uids = set()

    def advance(self):
        workload = self.current()
        pods = self.api.pods_of(workload)
        desired = desired_pods(workload)
        live = [pod for pod in pods if not is_terminating(pod)]
        live_uids = set(meta_of(pod).get("uid") for pod in live)
        self.queue = [pod for pod in self.queue if meta_of(pod)["uid"] in live_uids]
        self.progress = {"desired": desired, "ready": sum(1 for pod in live if is_ready(pod)),
                         "replaced": self.evicted, "to_replace": len(self.queue)}
        if not settled(pods, desired, self.evicted_uids):
            return False
        if not self.queue:
            return True
        self.evict_next()
        return False

    def evict_next(self):
        pod = self.queue[0]
        outcome = self.api.evict(pod)
        if outcome == REFUSED:
            self.refused += 1
            return
        self.queue.pop(0)
        if outcome == EVICTED:
            self.wrote = True
            self.evicted += 1
            self.evicted_uids.add(meta_of(pod)["uid"])


def replacement_for(api, move, revision, timeout):
    kind = PodByPodEviction if move.method == "eviction" else RolloutRestart
    return kind(api, move, revision, timeout)
