"""Planning, progress and batching of workload_migrate, on plain dicts and a simulated cluster."""

import datetime

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils.converge import Changes
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import MeshSnapshot
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_migrate import (
    check_options,
    migrate,
    outcome_entry,
    relabel_patch,
    run_batches,
    target_revision,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_plan import MigrationError, Move, plan_namespace
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_replacement import (
    EVICTED,
    GONE,
    REFUSED,
    SKIPPED,
    TIMED_OUT,
    PodByPodEviction,
    RolloutRestart,
    eviction_order,
    restart_patch,
    rollout_progress,
)

from tests.unit.plugins.fakes import FakeClock

OLD, NEW = "1-30-dev", "1-31-0"


# ---------------------------------------------------------------- builders

def pod(name, revision=OLD, owner=None, ready=True, phase="Running", uid=None, labels=None):
    meta = {"name": name, "namespace": "shop", "uid": uid or "uid-" + name,
            "labels": labels or {}}
    if revision:
        meta["annotations"] = {"istio.io/rev": revision}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True,
                                    "uid": "uid-" + owner[1]}]
    return {"kind": "Pod", "metadata": meta, "status": {
        "phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def workload(kind, name, replicas=1, labels=None, strategy=None, **spec):
    body = {"selector": {"matchLabels": labels or {"app": name}},
            "template": {"metadata": {"labels": labels or {"app": name}}}}
    if kind != "DaemonSet":
        body["replicas"] = replicas
    if strategy:
        body["strategy" if kind == "Deployment" else "updateStrategy"] = strategy
    body.update(spec)
    return {"kind": kind, "metadata": {"name": name, "namespace": "shop", "uid": "uid-" + name,
                                       "generation": 1},
            "spec": body, "status": {"observedGeneration": 1}}


def owned(kind, name, owner_kind, owner_name):
    return {"kind": kind, "metadata": {"name": name, "ownerReferences": [
        {"kind": owner_kind, "name": owner_name, "controller": True, "uid": "uid-" + owner_name}]}}


def pdb(name, selector):
    return {"kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": selector}}


def snapshot(revisions, tags, ready=True):
    deployments = [{"metadata": {"name": "istiod-" + rev, "namespace": "istio-system",
                                 "labels": {"app": "istiod", "istio.io/rev": rev}},
                    "spec": {"replicas": 1}, "status": {"readyReplicas": 1 if ready else 0}}
                   for rev in revisions]
    hooks = [{"metadata": {"name": "istio-revision-tag-" + tag,
                           "labels": {"istio.io/tag": tag, "istio.io/rev": rev}}}
             for tag, rev in tags.items()]
    return MeshSnapshot({"kubernetes_version": "v1.35.4", "istio_namespace": "istio-system",
                         "namespaces": [], "pods": [], "deployments": deployments,
                         "services": [],
                         "mutating_webhooks": hooks, "validating_webhooks": []})


# ---------------------------------------------------------------- the options, the tag, the namespaces

@pytest.mark.parametrize("change,message", [
    ({"tag": "Prod_Stable"}, "'Prod_Stable' is not a valid revision or tag name"),
    ({"namespaces": []}, "namespaces is empty"),
    ({"namespaces": ["shop", "istio-system"]}, "namespace istio-system holds the control planes"),
    ({"batch_size": 0}, "batch_size must be at least 1, not 0"),
    ({"timeout": -5}, "timeout must be at least 1, not -5"),
])
def test_options_that_cannot_work_are_refused(change, message):
    params = {"namespaces": ["shop"], "tag": "prod-stable", "istio_namespace": "istio-system",
              "batch_size": 1, "timeout": 300}
    check_options(params)
    params.update(change)
    with pytest.raises(ValueError, match=message):
        check_options(params)


def test_a_tag_resolves_to_its_revision_and_a_revision_to_itself():
    mesh = snapshot([OLD, NEW], {"prod-stable": NEW})
    assert target_revision(mesh, "prod-stable") == NEW
    assert target_revision(mesh, OLD) == OLD


@pytest.mark.parametrize("tags,ready,name,message", [
    ({"prod-stable": "1-29-0"}, True, "prod-stable",
     "tag 'prod-stable' points at revision 1-29-0, which is not installed (installed: 1-30-dev, 1-31-0)"),
    ({}, True, "prod-canary", "'prod-canary' is neither a revision tag nor an installed revision"),
    ({"prod-stable": NEW}, False, "prod-stable",
     "revision 1-31-0 (tag prod-stable) is installed but not Ready (0 of 1 replicas of Deployment "
     "istio-system/istiod-1-31-0 ready)"),
])
def test_a_tag_without_an_installed_ready_revision_is_refused(tags, ready, name, message):
    with pytest.raises(MigrationError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")):
        target_revision(snapshot([OLD, NEW], tags, ready), name)


def test_namespaces_get_the_tag_and_lose_istio_injection():
    assert relabel_patch({"metadata": {"labels": {"istio-injection": "enabled"}}}, "prod-stable") == {
        "metadata": {"labels": {"istio.io/rev": "prod-stable", "istio-injection": None}}}
    assert relabel_patch({"metadata": {"labels": {"istio.io/rev": "prod-canary"}}}, "prod-stable") == {
        "metadata": {"labels": {"istio.io/rev": "prod-stable"}}}
    assert relabel_patch({"metadata": {"labels": {"istio.io/rev": "prod-stable"}}}, "prod-stable") is None


# ---------------------------------------------------------------- planning

def namespace_objects():
    return {
        "Pod": [
            pod("web-1", owner=("ReplicaSet", "web-abc")),
            pod("web-2", owner=("ReplicaSet", "web-abc")),
            pod("web-3", revision=NEW, owner=("ReplicaSet", "web-def")),
            pod("cart-1", owner=("ReplicaSet", "cart-abc"), labels={"app": "cart"}),
            pod("db-0", owner=("StatefulSet", "db")),
            pod("db-1", owner=("StatefulSet", "db")),
            pod("agent-x", owner=("DaemonSet", "agent")),
            pod("debug"),
            pod("batch-x", owner=("Job", "batch")),
            pod("nightly-1-x", owner=("Job", "nightly-1")),
            pod("done-x", owner=("Job", "done"), phase="Succeeded"),
            pod("plain", revision=None, owner=("ReplicaSet", "plain-abc")),
            pod("orphan-x", owner=("ReplicaSet", "orphan")),
            pod("custom-0", owner=("Rollout", "custom")),
        ],
        "ReplicaSet": [owned("ReplicaSet", "web-abc", "Deployment", "web"),
                       owned("ReplicaSet", "web-def", "Deployment", "web"),
                       owned("ReplicaSet", "cart-abc", "Deployment", "cart"),
                       owned("ReplicaSet", "plain-abc", "Deployment", "plain"),
                       {"kind": "ReplicaSet", "metadata": {"name": "orphan"}}],
        "Job": [owned("Job", "nightly-1", "CronJob", "nightly"), {"kind": "Job", "metadata": {"name": "batch"}}],
        "Deployment": [workload("Deployment", "web", 3), workload("Deployment", "cart", 3),
                       workload("Deployment", "plain")],
        "StatefulSet": [workload("StatefulSet", "db", 2, strategy={"type": "OnDelete"})],
        "DaemonSet": [workload("DaemonSet", "agent")],
        "PodDisruptionBudget": [pdb("cart", {"matchLabels": {"app": "cart"}})],
    }


def test_stale_pods_are_grouped_by_the_workload_that_recreates_them():
    moves, stuck = plan_namespace("shop", namespace_objects(), NEW)
    assert [(m.kind, m.name, m.method) for m in moves] == [
        ("Deployment", "cart", "eviction"), ("Deployment", "web", "rollout-restart"),
        ("StatefulSet", "db", "eviction"), ("DaemonSet", "agent", "rollout-restart")]
    web = moves[1]
    assert sorted(p["metadata"]["name"] for p in web.pods) == ["web-1", "web-2"]
    assert moves[0].why == "PodDisruptionBudget cart covers its pods"
    assert moves[2].why.startswith("update strategy OnDelete")
    assert [(s["kind"], s["name"], s["cause"]) for s in stuck] == [
        ("CronJob", "nightly", "cronjob"), ("Job", "batch", "job"), ("Pod", "debug", "bare-pod"),
        ("ReplicaSet", "orphan", "unmanaged"), ("Rollout", "custom", "unmanaged")]
    assert stuck[2]["revisions"] == {OLD: 1} and stuck[2]["pods"] == ["debug"]
    assert "delete and recreate it" in stuck[2]["reason"]


def test_nothing_to_do_when_every_pod_runs_the_revision():
    objects = namespace_objects()
    for item in objects["Pod"]:
        if item["metadata"].get("annotations"):
            item["metadata"]["annotations"]["istio.io/rev"] = NEW
    assert plan_namespace("shop", objects, NEW) == ([], [])


@pytest.mark.parametrize("change,cause,message", [
    (lambda o: o["Deployment"][0]["spec"].update(paused=True), "paused", "kubectl rollout resume"),
    (lambda o: o["PodDisruptionBudget"].extend([pdb("all", {}), pdb("web", {"matchLabels": {"app": "web"}})]),
     "multiple-pdbs", "PodDisruptionBudgets all, web all cover its pods"),
])
def test_workloads_a_restart_cannot_move_are_reported(change, cause, message):
    objects = namespace_objects()
    change(objects)
    _moves, stuck = plan_namespace("shop", objects, NEW)
    web = [s for s in stuck if s["name"] == "web"]
    assert web and web[0]["cause"] == cause and message in web[0]["reason"]


def test_a_partitioned_statefulset_is_replaced_pod_by_pod():
    objects = namespace_objects()
    objects["StatefulSet"] = [workload("StatefulSet", "db", 2, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"partition": 1}})]
    moves, _stuck = plan_namespace("shop", objects, NEW)
    assert [m.method for m in moves if m.kind == "StatefulSet"] == ["eviction"]


def test_statefulset_pods_are_evicted_highest_ordinal_first():
    pods = [pod("db-%d" % i) for i in (0, 10, 2, 1)]
    assert [p["metadata"]["name"] for p in eviction_order("StatefulSet", pods)] == [
        "db-10", "db-2", "db-1", "db-0"]
    assert [p["metadata"]["name"] for p in eviction_order("Deployment", pods)] == [
        "db-0", "db-1", "db-10", "db-2"]


# ---------------------------------------------------------------- progress

def with_status(obj, generation=2, **status):
    obj["metadata"]["generation"] = generation
    obj["status"] = status
    return obj


def test_a_deployment_rollout_is_done_when_every_replica_is_new_and_available():
    def progress(**status):
        return rollout_progress(with_status(workload("Deployment", "web", 3), **status))[0]
    assert progress(observedGeneration=2, replicas=3, updatedReplicas=3, availableReplicas=3)
    assert not progress(observedGeneration=1, replicas=3, updatedReplicas=3, availableReplicas=3)
    assert not progress(observedGeneration=2, replicas=4, updatedReplicas=3, availableReplicas=3)
    assert not progress(observedGeneration=2, replicas=3, updatedReplicas=3, availableReplicas=2)
    done, counts = rollout_progress(with_status(workload("Deployment", "web", 3), observedGeneration=2,
                                                replicas=3, updatedReplicas=1, readyReplicas=2))
    assert not done and counts == {"desired": 3, "updated": 1, "ready": 2, "available": 0}


def test_statefulset_and_daemonset_rollouts():
    sts = workload("StatefulSet", "db", 2)
    assert rollout_progress(with_status(sts, observedGeneration=2, readyReplicas=2,
                                        currentRevision="db-2", updateRevision="db-2"))[0]
    assert not rollout_progress(with_status(sts, observedGeneration=2, readyReplicas=2,
                                            currentRevision="db-1", updateRevision="db-2"))[0]
    ds = workload("DaemonSet", "agent")
    assert rollout_progress(with_status(ds, observedGeneration=2, desiredNumberScheduled=3,
                                        updatedNumberScheduled=3, numberAvailable=3))[0]
    assert not rollout_progress(with_status(ds, observedGeneration=2, desiredNumberScheduled=3,
                                            updatedNumberScheduled=3, numberAvailable=2))[0]


def test_the_restart_patch_is_kubectls():
    when = datetime.datetime(2026, 5, 1, 12, 0, 5, tzinfo=datetime.timezone.utc)
    assert restart_patch(when) == {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-05-01T12:00:05Z"}}}}}


# ---------------------------------------------------------------- a simulated cluster

class FakeApi(object):
    """Workloads whose pods are replaced as controllers would replace them: an evicted pod is
    gone at once and its replacement (on the new revision) turns Ready one read later; a
    restarted workload finishes its rollout after `rollout_reads` reads (never when held)."""

    def __init__(self, workloads, pods, budget_refusals=0, held=(), rollout_reads=2):
        self.workloads = dict((w["metadata"]["name"], w) for w in workloads)
        self.pods = pods
        self.budget_refusals = budget_refusals
        self.held = held
        self.rollout_reads = rollout_reads
        self.writes = []
        self.reads_since_restart = {}
        self.created = 0

    def namespace(self, name):
        return {"metadata": {"name": name, "labels": {"istio.io/rev": "prod-stable"}}}

    def relabel(self, name, patch):
        self.writes.append(("relabel", name))
        return {"metadata": {"name": name, "labels": patch["metadata"]["labels"]}}

    def namespace_objects(self, namespace):
        return {"Pod": list(self.pods), "ReplicaSet": [], "Job": [],
                "Deployment": [w for w in self.workloads.values() if w["kind"] == "Deployment"],
                "StatefulSet": [w for w in self.workloads.values() if w["kind"] == "StatefulSet"],
                "DaemonSet": [], "PodDisruptionBudget": []}

    def workload(self, kind, name, namespace):
        obj = self.workloads[name]
        if name in self.reads_since_restart:
            self.reads_since_restart[name] += 1
            if self.reads_since_restart[name] >= self.rollout_reads and name not in self.held:
                replicas = obj["spec"]["replicas"]
                with_status(obj, observedGeneration=2, replicas=replicas, updatedReplicas=replicas,
                            readyReplicas=replicas, availableReplicas=replicas)
        return obj

    def restart(self, obj, when):
        self.writes.append(("restart", obj["metadata"]["name"]))
        self.reads_since_restart[obj["metadata"]["name"]] = 0
        with_status(obj, observedGeneration=1)

    def pods_of(self, obj):
        name = obj["metadata"]["name"]
        mine = [p for p in self.pods if p["metadata"]["ownerReferences"][0]["name"] == name]
        for item in mine:
            if item["metadata"].get("fresh") and name not in self.held:
                item["status"]["conditions"][0]["status"] = "True"
        for item in mine:
            item["metadata"]["fresh"] = True
        return mine

    def evict(self, victim):
        if self.budget_refusals:
            self.budget_refusals -= 1
            self.writes.append(("refused", victim["metadata"]["name"]))
            return REFUSED
        self.writes.append(("evict", victim["metadata"]["name"]))
        self.pods.remove(victim)
        self.created += 1
        owner = victim["metadata"]["ownerReferences"][0]
        fresh = pod(victim["metadata"]["name"], NEW, (owner["kind"], owner["name"]), ready=False,
                    uid="new-%d" % self.created)
        self.pods.append(fresh)
        return EVICTED


def sts_move(api):
    sts = api.workloads["db"]
    return Move("shop", sts, list(api.pods), "eviction", "update strategy OnDelete")


def test_evictions_wait_for_each_replacement_and_retry_refusals():
    api = FakeApi([workload("StatefulSet", "db", 3, strategy={"type": "OnDelete"})],
                  [pod("db-%d" % i, owner=("StatefulSet", "db")) for i in range(3)],
                  budget_refusals=2)
    clock = FakeClock()
    replacement = PodByPodEviction(api, sts_move(api), NEW, timeout=60)
    run_batches([replacement], 1, True, clock, clock.sleep, poll=1)
    assert replacement.state == "done"
    assert api.writes == [("refused", "db-2"), ("refused", "db-2"), ("evict", "db-2"),
                          ("evict", "db-1"), ("evict", "db-0")]
    assert (replacement.evicted, replacement.refused) == (3, 2)
    assert replacement.revisions_after == {NEW: 3}
    assert outcome_entry(replacement) is None


def test_no_eviction_while_a_pod_of_the_workload_is_not_ready():
    pods = [pod("db-0", owner=("StatefulSet", "db")), pod("db-1", owner=("StatefulSet", "db"),
                                                          ready=False)]
    api = FakeApi([workload("StatefulSet", "db", 2)], pods, held=("db",))
    clock = FakeClock()
    replacement = PodByPodEviction(api, sts_move(api), NEW, timeout=10)
    run_batches([replacement], 1, True, clock, clock.sleep, poll=1)
    assert replacement.state == TIMED_OUT and api.writes == []
    entry = outcome_entry(replacement)
    assert entry["cause"] == "timeout"
    assert entry["reason"] == "not finished after 10s (desired 2, ready 1, replaced 0, to_replace 2)"


def deployments(*names):
    return [workload("Deployment", name, 2) for name in names]


def restart_moves(api):
    return [RolloutRestart(api, Move("shop", api.workloads[name], [pod(name + "-x")],
                                     "rollout-restart", "no PodDisruptionBudget covers it"),
                           NEW, timeout=5) for name in sorted(api.workloads)]


def test_batches_run_one_after_the_other():
    api = FakeApi(deployments("a", "b", "c"), [])
    clock = FakeClock()
    replacements = restart_moves(api)
    run_batches(replacements, 2, True, clock, clock.sleep, poll=1)
    assert [r.state for r in replacements] == ["done", "done", "done"]
    assert replacements[0].started == replacements[1].started < replacements[2].started
    assert replacements[2].started >= max(replacements[0].finished, replacements[1].finished)


def test_a_timeout_skips_later_batches_unless_told_to_go_on():
    for stop, states in ((True, [TIMED_OUT, SKIPPED, SKIPPED]), (False, [TIMED_OUT, "done", "done"])):
        api = FakeApi(deployments("a", "b", "c"), [], held=("a",))
        clock = FakeClock()
        replacements = restart_moves(api)
        run_batches(replacements, 1, stop, clock, clock.sleep, poll=1)
        assert [r.state for r in replacements] == states
        assert replacements[0].duration == 5.0


def migrate_params(**extra):
    params = {"namespaces": ["shop", "shop"], "tag": "prod-stable", "revision": NEW,
              "batch_size": 1, "timeout": 30, "fail_on_timeout": True}
    params.update(extra)
    return params


def no_sleep(seconds):
    pass


def test_check_mode_predicts_without_writing():
    api = FakeApi(deployments("web"), [pod("web-1", owner=("Deployment", "web"))])
    changes = Changes()
    result = migrate(api, changes, migrate_params(), check_mode=True, sleep=no_sleep)
    assert api.writes == []
    assert [(r["kind"], r["name"], r["duration"]) for r in result["restarted"]] == [
        ("Deployment", "web", 0.0)]
    assert changes.changed_objects == ["shop/Deployment/web"]
    assert changes.diffs[-1]["before"] == "shop/Deployment/web: 1-30-dev (1 pods)\n"
    assert changes.diffs[-1]["after"] == "shop/Deployment/web: 1-31-0 (rollout-restart)\n"


def test_a_migrated_namespace_needs_no_write():
    api = FakeApi(deployments("web"), [pod("web-1", NEW, owner=("Deployment", "web"))])
    changes = Changes()
    result = migrate(api, changes, migrate_params(), check_mode=False, sleep=no_sleep)
    assert api.writes == [] and not changes.changed
    assert result["restarted"] == [] and result["not_moved"] == [] and result["timed_out"] == []


def test_a_held_workload_is_reported_with_its_counts():
    api = FakeApi(deployments("a", "b"), [pod("a-1", owner=("Deployment", "a")),
                                          pod("b-1", owner=("Deployment", "b"))], held=("a",))
    clock = FakeClock()
    result = migrate(api, Changes(), migrate_params(timeout=3), check_mode=False, clock=clock,
                     sleep=clock.sleep, poll=1)
    assert result["timed_out"] == ["shop/Deployment/a"]
    assert [(e["name"], e["cause"]) for e in result["not_moved"]] == [("a", "timeout"), ("b", "skipped")]
    assert result["not_moved"][0]["progress"] == {"desired": 2, "updated": 0, "ready": 0, "available": 0}
    assert "shop/Deployment/a timed out in an earlier batch" in result["not_moved"][1]["reason"]
    assert api.writes == [("restart", "a")]


def test_evictions_that_find_the_pod_gone_move_on():
    api = FakeApi([workload("StatefulSet", "db", 1)], [pod("db-0", owner=("StatefulSet", "db"))])
    api.evict = lambda victim: GONE
    replacement = PodByPodEviction(api, sts_move(api), NEW, timeout=5)
    clock = FakeClock()
    run_batches([replacement], 1, True, clock, clock.sleep, poll=1)
    assert replacement.state == "done" and replacement.evicted == 0 and not replacement.wrote
