# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Moving workloads onto a revision: which pods run a stale sidecar, which workload owns them,
how each workload is replaced, and waiting for it, batch by batch.

A workload is replaced in one of two ways:

* `rollout-restart`: the pod template annotation `kubectl.kubernetes.io/restartedAt` is set, as
  `kubectl rollout restart` does, and the rollout is awaited as `kubectl rollout status` awaits it.
* `eviction`: pod by pod through the Eviction API (policy/v1). Used when a PodDisruptionBudget
  covers the workload (a rollout ignores PDBs; the apiserver enforces them on evictions, and
  answers 429 while a disruption is not allowed, which is retried until the timeout), and for
  update strategy OnDelete or a StatefulSet partition, where a template change replaces nothing.
  Each eviction waits until every pod of the workload is Ready and the previous evicted pod has
  a Ready replacement; StatefulSet pods go highest ordinal first.

The planning functions are pure and work on plain dicts; `WorkloadApi` is the only part that
talks to the cluster; `run_batches` drives `Replacement`s with an injectable clock.
"""

from __future__ import annotations

import datetime
import time

from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import (
    INJECTION_LABEL,
    REV_LABEL,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    annotations_of,
    labels_of,
    meta_of,
    spec_of,
    status_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import (
    selector_matches,
    selector_string,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.pod_readiness import (
    is_ready,
    is_terminating,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import check_revision_name

try:
    from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, TooManyRequestsError
except ImportError:  # reported by AnsibleK8SModule's requirement check

    class ConflictError(Exception):
        pass

    class NotFoundError(Exception):
        pass

    class TooManyRequestsError(Exception):
        pass

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
LISTED_KINDS = (("v1", "Pod"), ("apps/v1", "ReplicaSet"), ("batch/v1", "Job"),
                ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
                ("policy/v1", "PodDisruptionBudget"))
POLL_SECONDS = 1.0

EVICTED, REFUSED, GONE = "evicted", "refused", "gone"
PENDING, RUNNING, DONE, TIMED_OUT, SKIPPED = "pending", "running", "done", "timed-out", "skipped"


class MigrationError(ValueError):
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


# ---------------------------------------------------------------- the options, the tag, the namespaces

def check_options(params):
    check_revision_name(params["tag"])
    if not params["namespaces"]:
        raise MigrationError("namespaces is empty: name at least one namespace to move")
    if params["istio_namespace"] in params["namespaces"]:
        raise MigrationError("namespace %s holds the control planes and is never enrolled for "
                             "injection: leave it out of namespaces" % params["istio_namespace"])
    for name in ("batch_size", "timeout"):
        if params[name] < 1:
            raise MigrationError("%s must be at least 1, not %d" % (name, params[name]))


def target_revision(snapshot, tag):
    """The installed, Ready revision `tag` selects (a revision name selects itself)."""
    revision = snapshot.resolve(tag)
    installed = ", ".join(snapshot.revision_names()) or "none"
    if revision not in snapshot.revisions:
        if tag in snapshot.tags:
            raise MigrationError(
                "tag %r points at revision %s, which is not installed (installed: %s); point the "
                "tag at an installed revision first (meshfleet.istio.revision_tag)"
                % (tag, revision, installed))
        raise MigrationError(
            "%r is neither a revision tag nor an installed revision (tags: %s; revisions: %s)"
            % (tag, ", ".join(sorted(snapshot.tags)) or "none", installed))
    info = snapshot.revisions[revision]
    if not info["ready"]:
        raise MigrationError(
            "revision %s%s is installed but not Ready (%d of %d replicas of Deployment %s/%s "
            "ready): restarted pods could not be injected; wait until it is Ready"
            % (revision, "" if revision == tag else " (tag %s)" % tag, info["ready_replicas"],
               info["replicas"], snapshot.istio_namespace, info["deployment"]))
    return revision


def relabel_patch(namespace, tag):
    """The merge patch that makes the namespace select `tag`, or None when it already does."""
    labels = labels_of(namespace)
    if labels.get(REV_LABEL) == tag and INJECTION_LABEL not in labels:
        return None
    patch = {REV_LABEL: tag}
    if INJECTION_LABEL in labels:
        patch[INJECTION_LABEL] = None
    return {"metadata": {"labels": patch}}


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


# ---------------------------------------------------------------- cluster access

class WorkloadApi(object):
    """The reads and writes of a migration, on top of `kube.Cluster`."""

    def __init__(self, cluster):
        self.cluster = cluster
        self._replicaset_owner = {}

    def namespace(self, name):
        return self.cluster.get("v1", "Namespace", name)

    def relabel(self, name, patch):
        return self.cluster.merge_patch("v1", "Namespace", name, patch)

    def namespace_objects(self, namespace):
        objects = {}
        for api_version, kind in LISTED_KINDS:
            objects[kind] = [dict(obj, kind=kind)
                             for obj in self.cluster.list(api_version, kind, namespace=namespace)]
        return objects

    def workload(self, kind, name, namespace):
        obj = self.cluster.get("apps/v1", kind, name, namespace)
        return dict(obj, kind=kind) if obj else None

    def restart(self, workload, when):
        meta = meta_of(workload)
        return self.cluster.merge_patch("apps/v1", workload["kind"], meta["name"],
                                        restart_patch(when), meta["namespace"])

    def pods_of(self, workload):
        """The workload's pods: matched by its selector and owned by it (through a ReplicaSet
        for a Deployment)."""
        meta = meta_of(workload)
        selector = selector_string(spec_of(workload).get("selector") or {})
        pods = self.cluster.list("v1", "Pod", namespace=meta["namespace"], label_selector=selector)
        return [pod for pod in pods if self._owner_uid(pod, workload) == meta["uid"]]

    def _owner_uid(self, pod, workload):
        owner = controller_ref(pod)
        if owner is None:
            return None
        if workload["kind"] != "Deployment" or owner["kind"] != "ReplicaSet":
            return owner.get("uid")
        key = (meta_of(pod)["namespace"], owner["name"])
        if key not in self._replicaset_owner:
            replicaset = self.cluster.get("apps/v1", "ReplicaSet", owner["name"], key[0])
            grand = controller_ref(replicaset)
            self._replicaset_owner[key] = grand.get("uid") if grand else None
        return self._replicaset_owner[key]

    def evict(self, pod):
        """EVICTED, REFUSED (429: a PodDisruptionBudget allows no disruption now) or GONE."""
        meta = meta_of(pod)
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "deleteOptions": {"preconditions": {"uid": meta["uid"]}}}
        eviction = self.cluster.resource("v1", "Pod").subresources["eviction"]
        self.cluster.before_write()
        try:
            eviction.create(body=body, name=meta["name"], namespace=meta["namespace"])
        except TooManyRequestsError:
            return REFUSED
        except (NotFoundError, ConflictError):  # gone, or replaced (uid precondition)
            return GONE
        return EVICTED


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


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_batches(replacements, batch_size, stop_on_timeout, clock=time.monotonic,
                sleep=time.sleep, poll=POLL_SECONDS):
    """Start `batch_size` replacements at once and wait until each has finished or timed out
    before the next batch. With `stop_on_timeout`, a timeout skips every later batch."""
    stopped_by = None
    for batch in chunks(replacements, batch_size):
        if stopped_by:
            for replacement in batch:
                replacement.skip(stopped_by)
            continue
        for replacement in batch:
            replacement.start(clock())
        while True:
            now = clock()
            for replacement in batch:
                replacement.step(now)
            if not any(r.running for r in batch):
                break
            sleep(poll)
        timed_out = [r.move.ref for r in batch if r.state == TIMED_OUT]
        if timed_out and stop_on_timeout:
            stopped_by = ", ".join(timed_out)


# ---------------------------------------------------------------- results

def moved_entry(replacement):
    move = replacement.move
    return {"namespace": move.namespace, "kind": move.kind, "name": move.name,
            "method": move.method, "method_reason": move.why,
            "from_revisions": count_revisions(move.pods), "duration": replacement.duration,
            "pods_evicted": replacement.evicted, "evictions_refused": replacement.refused}


def outcome_entry(replacement):
    """None when the workload moved; else its not-moved entry."""
    move = replacement.move
    if replacement.state == TIMED_OUT:
        entry = not_moved(move.namespace, move.kind, move.name, move.pods, "timeout",
                          "not finished after %ds (%s)" % (replacement.timeout,
                                                           describe_progress(replacement.progress)))
    elif replacement.state == SKIPPED:
        entry = not_moved(move.namespace, move.kind, move.name, move.pods, "skipped",
                          "not started: %s timed out in an earlier batch"
                          % replacement.skipped_because)
    elif set(replacement.revisions_after) - {replacement.revision}:
        entry = not_moved(move.namespace, move.kind, move.name, move.pods, "still-stale",
                          "replaced, but its new pods run %s: its pod template pins another "
                          "revision or disables injection"
                          % ", ".join(sorted(set(replacement.revisions_after)
                                             - {replacement.revision})))
    else:
        return None
    entry.update(method=move.method, progress=dict(replacement.progress),
                 duration=replacement.duration)
    return entry


def describe_progress(progress):
    return ", ".join("%s %s" % (key, value) for key, value in sorted(progress.items())) or "no status"


def describe_revisions(counts):
    return ", ".join("%s (%d pods)" % item for item in sorted(counts.items()))


def workload_diff(moves, revision):
    """A diff entry listing the workloads restarted, with the revisions they run before/after."""
    before = "".join("%s: %s\n" % (m.ref, describe_revisions(count_revisions(m.pods)))
                     for m in moves)
    after = "".join("%s: %s (%s)\n" % (m.ref, revision, m.method) for m in moves)
    return {"before": before, "after": after, "before_header": "workloads",
            "after_header": "workloads"}


# ---------------------------------------------------------------- the whole migration

def existing_namespaces(api, names):
    """The namespaces, read; refuses before any write when one is missing."""
    found = [(name, api.namespace(name)) for name in names]
    missing = [name for name, obj in found if obj is None]
    if missing:
        raise MigrationError("namespace(s) %s do not exist: create them or leave them out of "
                             "namespaces" % ", ".join(missing))
    return [obj for _name, obj in found]


def relabel_namespaces(api, changes, namespaces, tag):
    """Make each namespace select `tag`; returns the names relabelled (or, in check mode, that
    would be)."""
    relabelled = []
    for namespace in namespaces:
        patch = relabel_patch(namespace, tag)
        if patch is None:
            continue
        name = meta_of(namespace)["name"]
        changes.record(True, namespace, api.relabel(name, patch), "Namespace/%s" % name)
        relabelled.append(name)
    return relabelled


def plan(api, names, revision):
    moves, stuck = [], []
    for name in names:
        found, blocked = plan_namespace(name, api.namespace_objects(name), revision)
        moves.extend(found)
        stuck.extend(blocked)
    return moves, stuck


def migrate(api, changes, params, check_mode, clock=time.monotonic, sleep=time.sleep,
            poll=POLL_SECONDS):
    """Relabel the namespaces, then replace the workloads batch by batch (in check mode: only
    predict). Returns the module's result fields besides changed/objects/diff."""
    names = list(dict.fromkeys(params["namespaces"]))
    namespaces = existing_namespaces(api, names)
    revision = params["revision"]
    relabelled = relabel_namespaces(api, changes, namespaces, params["tag"])
    moves, stuck = plan(api, names, revision)
    replacements = [replacement_for(api, move, revision, params["timeout"]) for move in moves]
    if check_mode:
        started = replacements
    else:
        run_batches(replacements, params["batch_size"], params["fail_on_timeout"], clock, sleep,
                    poll)
        started = [r for r in replacements if r.wrote]
    if started:
        changes.changed_objects.extend(r.move.ref for r in started)
        changes.diffs.append(workload_diff([r.move for r in started], revision))
    outcomes = [(r, None if check_mode else outcome_entry(r)) for r in replacements]
    return {"tag": params["tag"], "revision": revision, "relabelled": relabelled,
            "restarted": [moved_entry(r) for r, entry in outcomes if entry is None],
            "not_moved": stuck + [entry for _r, entry in outcomes if entry is not None],
            "timed_out": [r.move.ref for r in replacements if r.state == TIMED_OUT]}
