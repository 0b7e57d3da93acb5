"""upgrade.yml and rollback.yml on a fleet of three clusters carrying demo workloads, with the
mesh's invariants checked continuously while the playbooks run. The tests build on each other
in file order, as an operator's sessions would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from localfleet.pytest_plugin import api_client
from localfleet.waits import wait_until
from tests.playbooks import istioctl_judge
from tests.playbooks.canary_setup import deploy_web, mesh_tags
from tests.playbooks.conftest import collections_path
from tests.playbooks.mesh_watch import MeshWatch

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

OLD, NEW = "1-30-3", "1-31-0"
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_canary_hosts": "cluster1",
           "meshfleet_prune_after": 0, "meshfleet_rollout_timeout": 120}
APPS = ["shop", "data", "node", "misc"]


@pytest.fixture(scope="module")
def apis(fleet):
    return {c.spec.name: api_client(fleet, c.spec.name) for c in fleet.clusters}


def labels(app, **extra):
    return dict({"app": app}, **extra)


def template(app, **extra_labels):
    return {"metadata": {"labels": labels(app, **extra_labels)},
            "spec": {"containers": [{"name": app, "image": f"example.invalid/{app}:1"}]}}


def deploy_demo_workloads(api):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    batch, policy = client.BatchV1Api(api), client.PolicyV1Api(api)
    for ns in APPS:
        core.create_namespace({"metadata": {"name": ns, "labels": {"istio.io/rev": "prod-stable"}}})
    for name, replicas in (("web", 3), ("api", 3)):
        apps.create_namespaced_deployment("shop", {
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels(name)},
                     "template": template(name)}})
    policy.create_namespaced_pod_disruption_budget("shop", {
        "metadata": {"name": "api"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": labels("api")}}})
    core.create_namespaced_service("data", {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "selector": labels("db"), "ports": [{"port": 5432}]}})
    apps.create_namespaced_stateful_set("data", {
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": labels("db")},
                 "updateStrategy": {"type": "OnDelete"}, "template": template("db")}})
    apps.create_namespaced_daemon_set("node", {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": labels("agent")}, "template": template("agent")}})
    core.create_namespaced_pod("misc", {"metadata": {"name": "bare", "labels": labels("bare")},
                                        "spec": template("bare")["spec"]})
    batch.create_namespaced_job("misc", {
        "metadata": {"name": "once"},
        "spec": {"template": {"metadata": {"labels": labels("once")},
                              "spec": dict(template("once")["spec"], restartPolicy="Never")}}})


def pods_on(api, revision, namespaces=APPS):
    core = client.CoreV1Api(api)
    return [f"{ns}/{p.metadata.name}" for ns in namespaces
            for p in core.list_namespaced_pod(ns).items
            if (p.metadata.annotations or {}).get("istio.io/rev") == revision
            and p.status.phase != "Succeeded"]


def test_install_the_old_revision_with_demo_workloads(run_playbook, apis, fleet):
    run = run_playbook("install", extra_vars={"meshfleet_istio_version": "1.30.3"})
    assert run.rc == 0, run.output
    for name, api in apis.items():
        deploy_demo_workloads(api)
    for name, api in apis.items():
        # 3 web + 3 api + 2 db + 3 agent (one per node) + bare pod, all injected by the old one
        wait_until(lambda: len(pods_on(api, OLD)) >= 12, what=f"demo pods on {OLD} in {name}")
    assert_istioctl_approves(fleet, apis, {"default": OLD, "prod-stable": OLD}, OLD)
    assert [m for name in apis for m in istioctl_judge.precheck(fleet, name)] == []


def assert_istioctl_approves(fleet, apis, tags, revision, clusters=None, allowed=()):
    objections = []
    for name in clusters or apis:
        objections += istioctl_judge.verdict(fleet, name, apis[name], tags, revision, allowed)
    assert objections == []


def test_a_failing_health_gate_stops_the_cluster_before_promotion(run_playbook, apis,
                                                                   write_counter):
    core = client.CoreV1Api(apis["cluster1"])
    deploy_web(apis["cluster1"], "canary", app="probe", hold="not-ready")
    counter = write_counter()
    run = run_playbook("upgrade", extra_vars=dict(UPGRADE, meshfleet_canary_namespaces=["canary"],
                                                  meshfleet_health_timeout=20))
    assert run.rc != 0
    assert run.failed_hosts() == ["cluster1"], run.recap()
    # no cluster outside the canary wave may be touched: only the input checks ran for them
    assert run.recap()["cluster2"] == {"ok": 1, "changed": 0, "unreachable": 0, "failed": 0}
    writes = counter.writes()
    assert writes["cluster2"] == [] and writes["cluster3"] == [], writes
    tags = mesh_tags(apis["cluster1"])
    assert tags["prod-stable"] == OLD and tags["default"] == OLD
    core.delete_namespace("canary")
    wait_until(lambda: not any(n.metadata.name == "canary" for n in core.list_namespace().items),
               what="canary namespace gone")


def test_upgrade_moves_every_movable_workload_with_proof_at_every_step(run_playbook, apis, fleet):
    with MeshWatch(fleet, OLD) as watch:
        run = run_playbook("upgrade", extra_vars=UPGRADE)
    assert run.rc == 0, run.output[-5000:]
    assert watch.violations == []
    assert watch.injection_probes > 0, "the watcher never probed injection"
    assert len({tag for _, _, tag in watch.seen}) >= 2, "the watcher never saw the tag move"
    for name, api in apis.items():
        assert mesh_tags(api) == {"default": NEW, "prod-stable": NEW}
        assert pods_on(api, OLD) == ["misc/bare"], name
        assert "kept revision 1-30-3" in run.output and "misc/bare" in run.output
        gateway = client.CoreV1Api(api).read_namespaced_service("istio-ingressgateway",
                                                               "istio-gateways")
        assert gateway.spec.selector["istio.io/rev"] == NEW
    assert_istioctl_approves(fleet, apis, {"default": NEW, "prod-stable": NEW}, NEW)


def test_rollback_returns_to_the_old_revision_while_it_exists(run_playbook, apis, fleet):
    with MeshWatch(fleet, OLD) as watch:
        run = run_playbook("rollback", limit="cluster3")
    assert run.rc == 0, run.output[-5000:]
    assert watch.violations == []
    api = apis["cluster3"]
    assert mesh_tags(api) == {"default": OLD, "prod-stable": OLD}
    assert pods_on(api, NEW) == []
    gateway = client.CoreV1Api(api).read_namespaced_service("istio-ingressgateway", "istio-gateways")
    assert gateway.spec.selector["istio.io/rev"] == OLD
    assert_istioctl_approves(fleet, apis, {"default": OLD, "prod-stable": OLD}, OLD,
                             clusters=["cluster3"])


def test_a_rerun_after_the_bare_pod_is_gone_completes_and_prunes(run_playbook, apis, fleet):
    for api in apis.values():
        client.CoreV1Api(api).delete_namespaced_pod("bare", "misc", grace_period_seconds=0)
    with MeshWatch(fleet, OLD) as watch:
        run = run_playbook("upgrade", extra_vars=UPGRADE)
    assert run.rc == 0, run.output[-5000:]
    assert watch.violations == []
    for name, api in apis.items():
        installed = {d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(
            "istio-system").items}
        assert installed == {f"istiod-{NEW}"}, name
        assert pods_on(api, OLD) == []
    assert_istioctl_approves(fleet, apis, {"default": NEW, "prod-stable": NEW}, NEW)


def test_a_second_upgrade_run_changes_nothing(run_playbook, write_counter):
    counter = write_counter()
    run = run_playbook("upgrade", extra_vars=UPGRADE)
    assert run.rc == 0, run.output[-3000:]
    assert run.changed() == {"cluster1": 0, "cluster2": 0, "cluster3": 0}
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}


def test_rollback_after_pruning_refuses(run_playbook):
    run = run_playbook("rollback", limit="cluster2")
    assert run.rc != 0
    assert "nothing to roll back to" in run.output or "name the one to go back to" in run.output


@pytest.mark.parametrize("extra,message", [
    ({"meshfleet_target_version": "1.29.8"}, "downgrade"),
    ({"meshfleet_target_version": "1.32.0"}, "not in meshfleet's version catalogue"),
    ({"meshfleet_target_version": "1.31"}, "not an Istio version"),
    ({"meshfleet_stable_tag": NEW}, f"meshfleet_stable_tag is '{NEW}': it has the shape of a revision name"),
])
def test_bad_input_fails_before_any_write(run_playbook, write_counter, extra, message, tmp_path):
    # The charts of the target must be in the chart source (checked before anything else), so
    # the downgrade is refused by the plan and not for a missing chart: stand-in chart files.
    for chart in ("base", "istiod", "gateway"):
        (tmp_path / f"{chart}-1.29.8.tgz").write_text("")
    if extra.get("meshfleet_target_version") == "1.29.8":
        extra = dict(extra, meshfleet_chart_source={"type": "directory", "path": str(tmp_path)})
    counter = write_counter()
    run = run_playbook("upgrade", extra_vars=dict(UPGRADE, **extra))
    assert run.rc != 0
    assert message in run.output, run.output[-3000:]
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}


def test_two_runs_on_one_cluster_the_second_is_refused(fleet, apis):
    """A live lock held by another run stops this one with the holder's name and the way out;
    naming a live holder to break its lock is not enough, forcing is."""
    coord = client.CoordinationV1Api(apis["cluster2"])
    assert lock_attempt(fleet, "other-run") == "ok"
    try:
        refused = lock_attempt(fleet, "this-run")
        assert "other-run, live" in refused and "meshfleet_force_break_lock=other-run" in refused
        assert "other-run, live" in lock_attempt(fleet, "this-run", break_holder="other-run")
        assert lock_attempt(fleet, "this-run", force_break_holder="other-run") == "ok"
        assert coord.read_namespaced_lease("meshfleet-run-lock",
                                           "kube-system").spec.holder_identity == "this-run"
    finally:
        coord.delete_namespaced_lease("meshfleet-run-lock", "kube-system")


def lock_attempt(fleet, holder, **breaks):
    args = dict(breaks, holder=holder, kubeconfig=str(fleet.kubeconfig), context="cluster2")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m",
         "meshfleet.istio.run_lock", "-a", json.dumps(args),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path()))
    return "ok" if proc.returncode == 0 else proc.stdout + proc.stderr


def test_cleanup_the_demo(run_playbook, apis):
    for api in apis.values():
        core = client.CoreV1Api(api)
        for ns in APPS:
            core.delete_namespace(ns)
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True})
    assert run.rc == 0, run.output[-3000:]
    for name, api in apis.items():  # the upgrade records are forgotten with the mesh
        records = client.CoreV1Api(api).list_namespaced_config_map(
            "kube-system", field_selector="metadata.name=meshfleet-upgrade").items
        assert records == [], name
