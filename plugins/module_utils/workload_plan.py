# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Which workloads to restart onto a revision, and how: the pods running a stale sidecar, the
workload that recreates them, and whether it is rollout-restarted or evicted pod by pod.

* `rollout-restart`: the pod template annotation `kubectl.kubernetes.io/restartedAt` is set, as
  `kubectl rollout restart` does.
* `eviction`: pod by pod through the Eviction API (policy/v1). Used when a PodDisruptionBudget
  covers the workload (a rollout ignores PDBs; the apiserver enforces them on evictions), and for
  update strategy OnDelete or a StatefulSet partition, where a template change replaces nothing.

Pure functions on plain dicts.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import REV_LABEL
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    annotations_of,
    labels_of,
    meta_of,
    spec_of,
    status_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import selector_matches
from ansible_collections.meshfleet.istio.plugins.module_utils.pod_readiness import is_terminating

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
LISTED_KINDS = (("v1", "Pod"), ("apps/v1", "ReplicaSet"), ("batch/v1", "Job"),
                ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
                ("policy/v1", "PodDisruptionBudget"))


class MigrationError(MeshfleetError, ValueError):
    """A migration meshfleet refuses, with the way out in its message."""


# ---------------------------------------------------------------- plain-dict helpers

def ref(namespace, kind, name):
    return "%s/%s/%s" % (namespace, kind, name)


def pod_revision(pod):
    """The revision that injected the pod's sidecar (the injector's annotation, never a tag)."""
    return annotations_of(pod).get(REV_LABEL)


def stale_pods(pods, revision):
    """Pods whose sidecar comes from another revision, still running (Succeeded pods run no
    proxy; terminating pods are on their way out)."""
    return [pod for pod in pods
            if pod_revision(pod) and pod_revision(pod) != revision
            and not is_terminating(pod) and status_of(pod).get("phase") != "Succeeded"]


def count_revisions(pods):
    counts = {}
    for pod in pods:
        revision = pod_revision(pod) or "none"
        counts[revision] = counts.get(revision, 0) + 1
    return counts


def controller_ref(obj):
    owners = meta_of(obj).get("ownerReferences") or []
    for owner in owners:
        if owner.get("controller"):
            return owner
    return owners[0] if owners else None


# ---------------------------------------------------------------- planning

NOT_MOVABLE = {
    "Pod": ("bare-pod", "a bare pod has no controller to recreate it: delete and recreate it "
                        "(or run it from a Deployment) to move it to %(revision)s"),
    "Job": ("job", "pods of Job %(name)s are not restarted: they keep their sidecar until they "
                   "end; the Job's new pods get %(revision)s"),
    "CronJob": ("cronjob", "pods of CronJob %(name)s are not restarted: they keep their sidecar "
                           "until they end; the next scheduled run gets %(revision)s"),
    "ReplicaSet": ("unmanaged", "ReplicaSet %(name)s has no Deployment: delete its pods to move "
                                "them to %(revision)s"),
}
UNMANAGED = ("unmanaged", "owned by %(kind)s %(name)s, which meshfleet does not restart: restart "
                          "it through its own controller")
MISSING = ("unmanaged", "its %(kind)s %(name)s no longer exists")


def owning_workload(pod, parents):
    """(kind, name) of what recreates the pod: the Deployment of its ReplicaSet, the CronJob of
    its Job, its own controller, or ("Pod", name) for a bare pod. `parents` maps
    (kind, name) to the namespace's ReplicaSets and Jobs."""
    owner = controller_ref(pod)
    if owner is None:
        return "Pod", meta_of(pod)["name"]
    kind, name = owner["kind"], owner["name"]
    grand = controller_ref(parents.get((kind, name)))
    if grand and (kind, grand["kind"]) in (("ReplicaSet", "Deployment"), ("Job", "CronJob")):
        return grand["kind"], grand["name"]
    return kind, name


def covering_budgets(workload, budgets):
    """Names of the PodDisruptionBudgets whose selector matches the pod template's labels."""
    template_labels = labels_of(spec_of(workload).get("template"))
    return sorted(meta_of(pdb)["name"] for pdb in budgets
                  if selector_matches(spec_of(pdb).get("selector"), template_labels))


def replacement_method(workload, budgets):
    """(method, why) for a workload, or raises NotMovable."""
    kind, spec = workload["kind"], spec_of(workload)
    if kind == "Deployment" and spec.get("paused"):
        raise NotMovable("paused", "the Deployment is paused: resume it (kubectl rollout resume) "
                                   "and run again")
    covering = covering_budgets(workload, budgets)
    if len(covering) > 1:
        raise NotMovable("multiple-pdbs", "PodDisruptionBudgets %s all cover its pods; the "
                                          "Eviction API refuses pods with more than one"
                         % ", ".join(covering))
    if covering:
        return "eviction", "PodDisruptionBudget %s covers its pods" % covering[0]
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return "eviction", "update strategy OnDelete: a template change replaces no pod"
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    if kind == "StatefulSet" and partition:
        return "eviction", ("rolling update partition %d: a restart would leave the ordinals "
                            "below it" % partition)
    return "rollout-restart", "no PodDisruptionBudget covers it"


class NotMovable(Exception):
    def __init__(self, cause, reason):
        super().__init__(reason)
        self.cause = cause
        self.reason = reason


class Move(object):
    """A workload to replace: its stale pods and how."""

    def __init__(self, namespace, workload, pods, method, why):
        self.namespace = namespace
        self.workload = workload
        self.kind = workload["kind"]
        self.name = meta_of(workload)["name"]
        self.pods = pods
        self.method = method
        self.why = why

    @property
    def ref(self):
        return ref(self.namespace, self.kind, self.name)


def not_moved(namespace, kind, name, pods, cause, reason):
    return {"namespace": namespace, "kind": kind, "name": name, "cause": cause,
            "reason": reason, "revisions": count_revisions(pods),
            "pods": sorted(meta_of(p)["name"] for p in pods)}


def _workload_order(key):
    kind, name = key
    rank = WORKLOAD_KINDS.index(kind) if kind in WORKLOAD_KINDS else len(WORKLOAD_KINDS)
    return rank, kind, name


def plan_namespace(namespace, objects, revision):
    """Split the namespace's stale pods into Moves and not-movable entries.

    `objects` maps a kind to the namespace's objects of that kind (LISTED_KINDS)."""
    parents = dict(((kind, meta_of(obj)["name"]), obj)
                   for kind in ("ReplicaSet", "Job") for obj in objects.get(kind, []))
    workloads = dict(((kind, meta_of(obj)["name"]), obj)
                     for kind in WORKLOAD_KINDS for obj in objects.get(kind, []))
    groups = {}
    for pod in stale_pods(objects.get("Pod", []), revision):
        groups.setdefault(owning_workload(pod, parents), []).append(pod)
    moves, stuck = [], []
    for key in sorted(groups, key=_workload_order):
        kind, name = key
        pods = groups[key]
        values = {"kind": kind, "name": name, "revision": revision}
        if kind not in WORKLOAD_KINDS:
            cause, reason = NOT_MOVABLE.get(kind, UNMANAGED)
            stuck.append(not_moved(namespace, kind, name, pods, cause, reason % values))
            continue
        if key not in workloads:
            stuck.append(not_moved(namespace, kind, name, pods, MISSING[0], MISSING[1] % values))
            continue
        try:
            method, why = replacement_method(workloads[key], objects.get("PodDisruptionBudget", []))
        except NotMovable as blocked:
            stuck.append(not_moved(namespace, kind, name, pods, blocked.cause, blocked.reason))
            continue
        moves.append(Move(namespace, workloads[key], pods, method, why))
    return moves, stuck
