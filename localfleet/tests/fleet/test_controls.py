"""Controls that later tests rely on: the audit write counter, the restricted identity, stopping
and starting each component of one cluster, holding pods NotReady or failing them, and a second
fleet beside the first that comes back after a crash."""

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from localfleet import audit, netns, paths, stages
from localfleet.fleet import Fleet
from localfleet.waits import wait_until

pytestmark = pytest.mark.fleet

ADMIN = "meshfleet-admin"


def stays(probe, seconds=3, what="condition"):
    """Assert that `probe()` holds for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe(), f"{what} stopped holding"
        time.sleep(0.3)


def pod_body(name, labels=None, restart="Always"):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"restartPolicy": restart,
                     "containers": [{"name": "app", "image": "example.invalid/app:1"}]}}


def deployment(name, replicas, labels=None):
    selector = {"app": name}
    return {"metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": {**selector, **(labels or {})}},
                                  "spec": pod_body(name)["spec"]}}}


def ready(pod):
    return {c.type: c.status for c in pod.status.conditions or []}.get("Ready") == "True"


# ---------------------------------------------------------------- audit and identities

def test_the_write_counter_counts_a_known_write_and_ignores_a_dry_run(fleet, cluster, k8s,
                                                                      namespace):
    core = client.CoreV1Api(k8s)
    marker = audit.mark(cluster.audit_log)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dry"}}, dry_run="All")
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "counted"}})
    core.read_namespaced_config_map("counted", namespace)
    writes = audit.writes(cluster.audit_log, since=marker, user=ADMIN)
    assert [(e["verb"], e["objectRef"]["name"]) for e in writes] == [("create", "counted")]
    assert audit.count_writes(cluster.audit_log, since=marker, user="meshfleet-restricted") == 0
    cli = subprocess.run([sys.executable, "-m", "localfleet", "--fleet", fleet.name, "audit",
                          cluster.spec.name, "--since", str(marker), "--user", ADMIN],
                         cwd=paths.REPO_ROOT, check=True, capture_output=True, text=True)
    assert cli.stdout.strip() == "1"


def test_the_restricted_identity_is_known_but_may_do_nothing(fleet, cluster):
    api = config.new_client_from_config(config_file=str(fleet.kubeconfig),
                                        context=f"{cluster.spec.name}-restricted")
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).list_namespaced_pod("default")
    assert err.value.status == 403
    assert json.loads(err.value.body)["message"].startswith(
        'pods is forbidden: User "meshfleet-restricted" cannot list resource "pods"')


# ---------------------------------------------------------------- one component down

@pytest.fixture
def last(fleet):
    """The last cluster, with API clients and a fresh namespace there."""
    target = fleet.clusters[-1]
    api = config.new_client_from_config(config_file=str(fleet.kubeconfig),
                                        context=target.spec.name)
    target.core, target.apps = client.CoreV1Api(api), client.AppsV1Api(api)
    target.ns = f"t-{uuid.uuid4().hex[:8]}"
    target.core.create_namespace({"metadata": {"name": target.ns}})
    yield target
    target.core.delete_namespace(target.ns)


@contextlib.contextmanager
def component_down(fleet, cluster, component):
    fleet.stop_component(cluster.spec.name, component)
    try:
        assert not cluster.alive(component)
        yield
    finally:
        fleet.start_component(cluster.spec.name, component)
    assert cluster.alive(component)


def test_without_etcd_the_apiserver_is_not_ready_until_etcd_is_back(fleet, last):
    with component_down(fleet, last, "etcd"):
        wait_until(lambda: last.api_get("/readyz") is None, what="/readyz to fail")
    wait_until(lambda: last.api_get("/readyz") == "ok", what="/readyz to recover")
    last.core.create_namespaced_config_map(last.ns, {"metadata": {"name": "after"}})


def test_without_the_scheduler_pods_stay_unscheduled(fleet, last):
    read = functools.partial(last.core.read_namespaced_pod, "waiting", last.ns)
    with component_down(fleet, last, "kube-scheduler"):
        last.core.create_namespaced_pod(last.ns, pod_body("waiting"))
        stays(lambda: read().spec.node_name is None, what="pod unscheduled")
    wait_until(lambda: ready(read()), what="pod scheduled and ready")


def test_without_kwok_scheduled_pods_do_not_start(fleet, last):
    read = functools.partial(last.core.read_namespaced_pod, "waiting", last.ns)
    with component_down(fleet, last, "kwok"):
        last.core.create_namespaced_pod(last.ns, pod_body("waiting"))
        wait_until(lambda: read().spec.node_name, what="pod scheduled")
        stays(lambda: read().status.phase == "Pending", what="pod pending")
    wait_until(lambda: ready(read()), what="pod ready")


def test_without_the_controller_manager_deployments_make_no_pods(fleet, last):
    pods = functools.partial(last.core.list_namespaced_pod, last.ns)
    with component_down(fleet, last, "kube-controller-manager"):
        last.apps.create_namespaced_deployment(last.ns, deployment("web", 2))
        stays(lambda: pods().items == [], what="no pods")
    wait_until(lambda: len([p for p in pods().items if ready(p)]) == 2, what="2 ready pods")


# ---------------------------------------------------------------- held pods

def test_not_ready_hold_stalls_a_rollout(k8s, namespace):
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    apps.create_namespaced_deployment(namespace, deployment("web", 2))
    read = functools.partial(apps.read_namespaced_deployment_status, "web", namespace)
    wait_until(lambda: read().status.ready_replicas == 2, what="2 ready replicas")
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"metadata": {
        "labels": {stages.HOLD_LABEL: "not-ready"}}}}})
    held = functools.partial(core.list_namespaced_pod, namespace,
                             label_selector=f"{stages.HOLD_LABEL}=not-ready")
    wait_until(lambda: [p.status.phase for p in held().items] == ["Running"],
             what="a held pod running")
    def stalled():
        status = read().status
        return ((status.updated_replicas, status.ready_replicas) == (1, 2)
                and not ready(held().items[0]))
    # The deployment controller reports the new pod a moment after the kubelet starts it.
    wait_until(stalled, what="the rollout reporting one updated, not ready pod")
    stays(stalled, what="the rollout stalled with the new pod not ready")
    pod = held().items[0]
    assert pod.status.pod_ip and not pod.status.container_statuses[0].ready


def test_fail_hold_fails_pods_and_other_pods_still_run(k8s, namespace):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_pod(namespace, pod_body("doomed", {stages.HOLD_LABEL: "fail"}, "Never"))
    core.create_namespaced_pod(namespace, pod_body("fine"))
    wait_until(lambda: core.read_namespaced_pod("doomed", namespace).status.phase == "Failed",
             what="pod failed")
    wait_until(lambda: ready(core.read_namespaced_pod("fine", namespace)), what="other pod ready")
    doomed = core.read_namespaced_pod("doomed", namespace)
    terminated = doomed.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (1, "Error")


# ---------------------------------------------------------------- a second fleet

def kill_all(fleet):
    for pid in [p for c in fleet.clusters for p in c.pids.values()] + [fleet.standin_pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_second_fleet_runs_beside_and_starts_again_after_a_crash(fleet):
    other = Fleet(f"{fleet.name[:18]}-b")
    try:
        other.down()
        other.up(1)
        assert other.clusters[0].api_get("/readyz") == "ok"
        kill_all(other)
        wait_until(lambda: not Fleet(other.name).running() and not Fleet(other.name).standin_alive(),
                 what="the crashed fleet and its istiod stand-in to be gone")
        restarted = Fleet(other.name)
        restarted.up(1)
        assert restarted.is_up(1)
        assert restarted.clusters[0].api_get("/readyz") == "ok"
    finally:
        Fleet(other.name).down()
        netns.enter(fleet.netns)
    assert not netns.exists(other.netns)
    assert fleet.is_up(len(fleet.clusters))
    assert fleet.clusters[0].api_get("/readyz") == "ok"
