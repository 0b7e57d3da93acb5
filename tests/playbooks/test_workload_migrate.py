"""workload_migrate on the fleet's first cluster: two istiod revisions installed with Helm
(1-30-3 and 1-31-0), namespaces on tag prod-stable -> 1-30-3 with one workload of each kind,
then prod-stable moved to 1-31-0 and the workloads migrated: check mode first, the real run
(with a PodDisruptionBudget watched all along), a second run, and a workload held NotReady.
The tests run in file order and build on each other; the module's fixture removes everything
it installed, so the next test file finds an empty cluster."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client, watch

from localfleet import gobuild, paths
from localfleet.stages import HOLD_LABEL
from localfleet.waits import wait_until
from tests.playbooks.conftest import collections_path

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

OLD, NEW = "1-30-3", "1-31-0"
CLUSTER = "cluster1"
APPS, LEGACY, HELD = "wm-apps", "wm-legacy", "wm-held"
PLAYBOOK = Path(__file__).parent / "files" / "workload_migrate.yml"
IMAGE = "example.invalid/app:1"
MOVABLE = {f"{APPS}/Deployment/web", f"{APPS}/Deployment/guarded", f"{APPS}/StatefulSet/db",
           f"{APPS}/DaemonSet/agent", f"{LEGACY}/Deployment/api"}


# ---------------------------------------------------------------- running the module

def run_step(fleet, workdir, extra_vars, check=False, diff=False):
    """ansible-playbook files/workload_migrate.yml; returns (rc, result of the task that ran,
    whole output)."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK),
           "-i", str(fleet.inventory), "-e", json.dumps(extra_vars)]
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    env = {"ANSIBLE_COLLECTIONS_PATH": collections_path(), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
           "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"), "ANSIBLE_RETRY_FILES_ENABLED": "0",
           "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(cmd, cwd=workdir, env=dict(tool_env(), **env), capture_output=True,
                          text=True, check=False)
    assert proc.stdout.strip(), (f"ansible-playbook exited {proc.returncode} and printed no "
                                 f"report:\n{proc.stderr[-5000:]}")
    report = json.loads(proc.stdout)
    results = [task["hosts"][CLUSTER] for task in report["plays"][0]["tasks"]
               if not task["hosts"][CLUSTER].get("skipped")]
    return proc.returncode, results[-1] if results else {}, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def migrate(fleet, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workload_migrate")

    def run(namespaces, tag="prod-stable", check=False, diff=False, **options):
        return run_step(fleet, workdir, dict(step="migrate", namespaces=namespaces, tag=tag,
                                             **options), check, diff)

    return run


# ---------------------------------------------------------------- the mesh and the workloads

def tool_env():
    return dict(os.environ, PATH=f"{gobuild.binaries_dir()}{os.pathsep}{os.environ['PATH']}")


def helm(fleet, *args, missing_ok=False):
    proc = subprocess.run(["helm", *args, "--kubeconfig", str(fleet.kubeconfig),
                           "--kube-context", CLUSTER], env=tool_env(), capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 or (missing_ok and "not found" in proc.stderr), proc.stderr
    return proc.stdout


def chart(name, version):
    return str(paths.charts_cache() / "all" / f"{name}-{version}.tgz")


SMALL = ["--set", "resources.requests.cpu=10m", "--set", "resources.requests.memory=16Mi"]


def install_revisions(fleet):
    helm(fleet, "install", "istio-base", chart("base", "1.31.0"), "-n", "istio-system",
         "--create-namespace", "--set", f"defaultRevision={OLD}")
    for version, revision in (("1.30.3", OLD), ("1.31.0", NEW)):
        helm(fleet, "install", f"istiod-{revision}", chart("istiod", version), "-n", "istio-system",
             "--set", f"revision={revision}", *SMALL, "--wait", "--timeout", "3m")


def uninstall_revisions(fleet, api):
    adm, core = client.AdmissionregistrationV1Api(api), client.CoreV1Api(api)
    for tag in ("default", "prod-stable"):
        ignore_missing(adm.delete_mutating_webhook_configuration, f"istio-revision-tag-{tag}")
        ignore_missing(core.delete_namespaced_service, f"istiod-revision-tag-{tag}", "istio-system")
    for release in (f"istiod-{NEW}", f"istiod-{OLD}", "istio-base"):
        helm(fleet, "uninstall", release, "-n", "istio-system", "--wait", missing_ok=True)
    delete_namespaces(api, ["istio-system"])
    # The base chart keeps its CRDs on uninstall; the next test file expects an empty cluster.
    client.ApiextensionsV1Api(api).delete_collection_custom_resource_definition(
        label_selector="app.kubernetes.io/part-of=istio")


def ignore_missing(call, *args):
    try:
        call(*args)
    except client.ApiException as error:
        if error.status != 404:
            raise


def labels(app, hold=None):
    result = {"app": app}
    if hold:
        result[HOLD_LABEL] = hold
    return result


def pod_template(app, hold=None, restart_policy="Always"):
    return {"metadata": {"labels": labels(app, hold)},
            "spec": {"restartPolicy": restart_policy, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": IMAGE}]}}


def deployment(name, replicas, hold=None, strategy=None):
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, hold)}
    if strategy:
        spec["strategy"] = strategy
    return {"metadata": {"name": name}, "spec": spec}


def create_apps(api):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": APPS, "labels": {"istio.io/rev": "prod-stable"}}})
    core.create_namespace({"metadata": {"name": LEGACY, "labels": {"istio-injection": "enabled"}}})
    apps.create_namespaced_deployment(APPS, deployment("web", 3))
    # A plain restart of this one would take all three pods down at once: only evictions that
    # respect the budget keep two of them Ready.
    apps.create_namespaced_deployment(APPS, deployment("guarded", 3, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%", "maxSurge": 0}}))
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(APPS, {
        "metadata": {"name": "guarded"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}}})
    core.create_namespaced_service(APPS, {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}})
    apps.create_namespaced_stateful_set(APPS, {"metadata": {"name": "db"}, "spec": {
        "replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "updateStrategy": {"type": "OnDelete"}, "template": pod_template("db")}})
    apps.create_namespaced_daemon_set(APPS, {"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}}, "template": pod_template("agent")}})
    core.create_namespaced_pod(APPS, {"metadata": {"name": "solo", "labels": {"app": "solo"}},
                                      "spec": pod_template("solo")["spec"]})
    # Held NotReady, so the Job's pod keeps running (KWOK completes Job pods at once otherwise).
    client.BatchV1Api(api).create_namespaced_job(APPS, {"metadata": {"name": "batch"}, "spec": {
        "backoffLimit": 0, "template": pod_template("batch", "not-ready", "Never")}})
    apps.create_namespaced_deployment(LEGACY, deployment("api", 1))


def pods(api, namespace, selector=None):
    return [p for p in client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
            if p.metadata.deletion_timestamp is None]


def revision(pod):
    return (pod.metadata.annotations or {}).get("istio.io/rev")


def ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


EXPECTED_PODS = {APPS: 3 + 3 + 2 + 3 + 1 + 1, LEGACY: 1}


def settled(api, namespace, count):
    found = pods(api, namespace)
    held = [p for p in found if (p.metadata.labels or {}).get(HOLD_LABEL)]
    return (len(found) == count and all(p.status.phase == "Running" for p in found)
            and all(ready(p) for p in found if p not in held))


def delete_namespaces(api, names):
    core = client.CoreV1Api(api)
    for name in names:
        ignore_missing(core.delete_namespace, name)
    wait_until(lambda: not set(names) & {ns.metadata.name for ns in core.list_namespace().items},
             f"namespaces {names} to go", timeout=120)


@pytest.fixture(scope="module")
def scene(fleet, api, tmp_path_factory):
    """The revisions, tags default and prod-stable on 1-30-3, and the workloads, all Ready;
    everything is removed at the end of the module. Yields a function that points tags at
    revisions ({tag: revision})."""
    workdir = tmp_path_factory.mktemp("workload_migrate_tags")
    try:
        install_revisions(fleet)
        rc, _result, output = run_step(fleet, workdir, {"step": "tags", "tags": {
            "default": OLD, "prod-stable": OLD}})
        assert rc == 0, output
        create_apps(api)
        for namespace, count in EXPECTED_PODS.items():
            wait_until(lambda: settled(api, namespace, count), f"the pods of {namespace}")
        yield lambda tags: run_step(fleet, workdir, {"step": "tags", "tags": tags})
    finally:
        delete_namespaces(api, [APPS, LEGACY, HELD])
        uninstall_revisions(fleet, api)


class ReadyWatch:
    """Counts the Ready, not terminating pods of a selector after every watch event, from
    before the module starts until after it ends."""

    def __init__(self, api, namespace, selector):
        self.core = client.CoreV1Api(api)
        self.namespace, self.selector = namespace, selector
        self.ready = {}
        self.counts = []
        self.stop = threading.Event()

    def __enter__(self):
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
        self.ready = {p.metadata.uid: self.is_up(p) for p in listed.items}
        self.counts.append(sum(self.ready.values()))
        self.resource_version = listed.metadata.resource_version
        self.thread = threading.Thread(target=self.follow, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        time.sleep(1)
        self.stop.set()
        self.thread.join(timeout=10)
        return False

    @staticmethod
    def is_up(pod):
        return pod.metadata.deletion_timestamp is None and ready(pod)

    def follow(self):
        while not self.stop.is_set():
            for event in watch.Watch().stream(
                    self.core.list_namespaced_pod, self.namespace, label_selector=self.selector,
                    resource_version=self.resource_version, timeout_seconds=1):
                pod = event["object"]
                self.resource_version = pod.metadata.resource_version
                if event["type"] == "DELETED":
                    self.ready.pop(pod.metadata.uid, None)
                else:
                    self.ready[pod.metadata.uid] = self.is_up(pod)
                self.counts.append(sum(self.ready.values()))


def by_ref(entries):
    return {f"{e['namespace']}/{e['kind']}/{e['name']}": e for e in entries}


# ---------------------------------------------------------------- the tests

def test_the_workloads_start_on_the_old_revision(scene, api):
    for namespace in (APPS, LEGACY):
        found = pods(api, namespace)
        assert found and {revision(p) for p in found} == {OLD}, namespace
        assert all(any(c.name == "istio-proxy" for c in p.spec.containers) for p in found)


@pytest.mark.parametrize("namespaces,tag,message", [
    ([LEGACY], "prod-nowhere", "'prod-nowhere' is neither a revision tag nor an installed revision "
                               "(tags: default, prod-stable; revisions: 1-30-3, 1-31-0)"),
    ([LEGACY, "wm-missing"], "prod-stable",
     "namespace(s) wm-missing do not exist: create them or leave them out of namespaces"),
])
def test_what_cannot_work_is_refused_before_any_write(scene, migrate, write_counter, namespaces,
                                                      tag, message):
    counter = write_counter()
    rc, result, output = migrate(namespaces, tag=tag)
    assert rc != 0
    assert message in result["msg"], output
    assert counter.writes()[CLUSTER] == []


def test_check_mode_predicts_the_move_and_writes_nothing(scene, api, migrate, write_counter):
    rc, _result, output = scene({"prod-stable": NEW})
    assert rc == 0, output
    counter = write_counter()
    rc, result, output = migrate([APPS, LEGACY], check=True, diff=True, batch_size=2)
    assert rc == 0, output
    assert counter.writes()[CLUSTER] == []
    assert result["changed"] and result["revision"] == NEW
    assert result["relabelled"] == [LEGACY]
    assert set(by_ref(result["restarted"])) == MOVABLE
    assert {e["cause"] for e in result["not_moved"]} == {"bare-pod", "job"}
    namespace_diff = [d for d in result["diff"] if d["before_header"] == f"Namespace/{LEGACY}"][0]
    assert namespace_diff["before"]["metadata"]["labels"]["istio-injection"] == "enabled"
    assert namespace_diff["after"]["metadata"]["labels"]["istio.io/rev"] == "prod-stable"
    assert "istio-injection" not in namespace_diff["after"]["metadata"]["labels"]
    listed = [d for d in result["diff"] if d["before_header"] == "workloads"][0]
    assert f"{APPS}/Deployment/guarded: {OLD} (3 pods)\n" in listed["before"]
    assert f"{APPS}/Deployment/guarded: {NEW} (eviction)\n" in listed["after"]
    for namespace in (APPS, LEGACY):
        assert {revision(p) for p in pods(api, namespace)} == {OLD}


def test_the_migration_moves_every_workload_and_respects_the_budget(scene, api, migrate,
                                                                    write_counter):
    counter = write_counter()
    with ReadyWatch(api, APPS, "app=guarded") as guarded:
        rc, result, output = migrate([APPS, LEGACY], batch_size=2, timeout=120)
    assert rc == 0, output
    assert result["changed"] and result["timed_out"] == []
    restarted = by_ref(result["restarted"])
    assert set(restarted) == MOVABLE
    for name in ("web", "guarded", "db", "agent", "solo", "batch"):
        expected = OLD if name in ("solo", "batch") else NEW
        assert {revision(p) for p in pods(api, APPS, f"app={name}")} == {expected}, name
    assert {revision(p) for p in pods(api, LEGACY)} == {NEW}
    labels_now = client.CoreV1Api(api).read_namespace(LEGACY).metadata.labels
    assert labels_now.get("istio.io/rev") == "prod-stable" and "istio-injection" not in labels_now

    assert restarted[f"{APPS}/Deployment/guarded"]["method"] == "eviction"
    assert restarted[f"{APPS}/Deployment/guarded"]["pods_evicted"] == 3
    assert restarted[f"{APPS}/StatefulSet/db"]["method"] == "eviction"
    assert restarted[f"{APPS}/Deployment/web"]["method"] == "rollout-restart"
    assert restarted[f"{APPS}/DaemonSet/agent"]["method"] == "rollout-restart"
    assert all(entry["duration"] > 0 for entry in restarted.values())
    # Every eviction took one pod out, and none took a second one out before its replacement
    # was Ready: the count dips to minAvailable and never below.
    assert min(guarded.counts) == 2, guarded.counts
    assert guarded.counts[0] == 3 and guarded.counts[-1] == 3

    not_moved = by_ref(result["not_moved"])
    assert set(not_moved) == {f"{APPS}/Pod/solo", f"{APPS}/Job/batch"}
    assert not_moved[f"{APPS}/Pod/solo"]["cause"] == "bare-pod"
    assert not_moved[f"{APPS}/Job/batch"]["cause"] == "job"
    assert not_moved[f"{APPS}/Job/batch"]["revisions"] == {OLD: 1}

    writes = counter.writes()[CLUSTER]
    evictions = [w.split()[2] for w in writes if w.startswith("create pods/eviction") and w.endswith(": 201")]
    db = [name for name in evictions if name.startswith(f"{APPS}/db-")]
    assert db == [f"{APPS}/db-1", f"{APPS}/db-0"], writes
    assert len([n for n in evictions if n.startswith(f"{APPS}/guarded-")]) == 3


def test_a_second_run_changes_nothing_and_writes_nothing(scene, migrate, write_counter):
    counter = write_counter()
    rc, result, output = migrate([APPS, LEGACY], batch_size=2)
    assert rc == 0, output
    assert not result["changed"]
    assert result["restarted"] == [] and result["relabelled"] == []
    assert set(by_ref(result["not_moved"])) == {f"{APPS}/Pod/solo", f"{APPS}/Job/batch"}
    assert counter.writes()[CLUSTER] == []


def test_a_workload_held_not_ready_times_out_and_stops_later_batches(scene, api, migrate,
                                                                      write_counter):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": HELD, "labels": {"istio.io/rev": OLD}}})
    apps.create_namespaced_deployment(HELD, deployment("a-stuck", 1, hold="not-ready"))
    apps.create_namespaced_deployment(HELD, deployment("b-next", 1))
    wait_until(lambda: settled(api, HELD, 2), f"the pods of {HELD}")
    counter = write_counter()
    rc, result, output = migrate([HELD], timeout=5)
    assert rc != 0
    assert f"timed out after 5s: {HELD}/Deployment/a-stuck" in result["msg"], output
    assert result["timed_out"] == [f"{HELD}/Deployment/a-stuck"]
    not_moved = by_ref(result["not_moved"])
    stuck = not_moved[f"{HELD}/Deployment/a-stuck"]
    assert stuck["cause"] == "timeout"
    assert stuck["progress"]["desired"] == 1 and stuck["progress"]["ready"] == 0
    assert not_moved[f"{HELD}/Deployment/b-next"]["cause"] == "skipped"
    assert {revision(p) for p in pods(api, HELD, "app=b-next")} == {OLD}
    assert [w.split()[:3] for w in counter.writes()[CLUSTER]] == [
        ["patch", "namespaces", f"{HELD}/{HELD}"], ["patch", "deployments", f"{HELD}/a-stuck"]]

    rc, result, output = migrate([HELD], timeout=5, fail_on_timeout=False)
    assert rc == 0, output
    assert result["timed_out"] == [f"{HELD}/Deployment/a-stuck"]
    assert set(by_ref(result["restarted"])) == {f"{HELD}/Deployment/b-next"}
    assert {revision(p) for p in pods(api, HELD, "app=b-next")} == {NEW}
    assert any("timed out: " in w for w in result.get("warnings", [])), output
