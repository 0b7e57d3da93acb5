"""upgrade.yml cut off in the middle, on a fleet of three clusters carrying a small demo workload:
one cluster's apiserver dies during the wave, then the ansible-playbook process itself is killed.
Each time the failure is reported plainly, the other clusters follow the failure policy, and a
rerun completes with nothing orphaned. The tests build on each other in file order."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from localfleet import gobuild
from localfleet.pytest_plugin import api_client
from localfleet.waits import wait_until
from tests.playbooks.canary_setup import mesh_tags
from tests.playbooks.conftest import collections_path
from tests.playbooks.mesh_watch import MeshWatch

# Each test runs several playbooks on three clusters of a shared two-core machine.
pytestmark = [pytest.mark.fleet, pytest.mark.scenario, pytest.mark.timeout(1800)]

OLD, NEW = "1-30-3", "1-31-0"
# A lock that goes stale a minute after its run died and expires only after ten.
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_canary_hosts": "cluster1",
           "meshfleet_prune_after": 0, "meshfleet_rollout_timeout": 180,
           "meshfleet_lock_ttl": 600}
# The whole wave at once; one of its two clusters may fail without stopping the other.
WAVE_POLICY = {"meshfleet_serial": "100%", "meshfleet_max_fail_percentage": 50}
DEMO = "demo"
LEASE = ("meshfleet-run-lock", "kube-system")
RUN_TIMEOUT = 900  # seconds a playbook run may take on a busy two-core machine


@pytest.fixture(scope="module")
def apis(fleet):
    assert [c.spec.name for c in fleet.clusters][:3] == ["cluster1", "cluster2", "cluster3"], \
        "these tests need three clusters: MESHFLEET_TEST_CLUSTERS=3"
    return {c.spec.name: api_client(fleet, c.spec.name) for c in fleet.clusters}


# ------------------------------------------------------------------ reading the clusters

def deploy_demo(api):
    """A namespace on the stable tag with a two-replica Deployment: a movable workload."""
    client.CoreV1Api(api).create_namespace(
        {"metadata": {"name": DEMO, "labels": {"istio.io/rev": "prod-stable"}}})
    client.AppsV1Api(api).create_namespaced_deployment(DEMO, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web",
                                                       "image": "example.invalid/web:1"}]}}}})


def delete_demo(api):
    core = client.CoreV1Api(api)
    core.delete_namespace(DEMO)
    wait_until(lambda: DEMO not in {n.metadata.name for n in core.list_namespace().items},
               timeout=300, what=f"namespace {DEMO} gone")


def demo_pods(api, revision):
    return [p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(DEMO).items
            if (p.metadata.annotations or {}).get("istio.io/rev") == revision
            and p.status.phase != "Succeeded"]


def istiods(api):
    return {d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(
        "istio-system", label_selector="app=istiod").items}


def has_deployment(api, name, namespace):
    return any(d.metadata.name == name
               for d in client.AppsV1Api(api).list_namespaced_deployment(namespace).items)


def gateway_revisions(api):
    """The revision each stable gateway Service selects."""
    return {s.metadata.name: s.spec.selector.get("istio.io/rev")
            for s in client.CoreV1Api(api).list_service_for_all_namespaces(
                label_selector="meshfleet.io/stable-gateway").items}


def lock_holder(api):
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease(*LEASE)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return lease.spec.holder_identity


def helm_releases(fleet, cluster):
    """Every Helm release of the cluster, whatever its state (`helm ls -a -A`): name -> status."""
    proc = subprocess.run(
        [str(gobuild.binaries_dir() / "helm"), "ls", "-a", "-A", "-o", "json",
         "--kubeconfig", str(fleet.kubeconfig), "--kube-context", cluster],
        capture_output=True, text=True, check=True)
    return {f"{r['namespace']}/{r['name']}": r["status"] for r in json.loads(proc.stdout)}


def mesh_facts(fleet, cluster):
    """meshfleet.istio.mesh_info's facts for one cluster, as a user would read them."""
    args = {"kubeconfig": str(fleet.kubeconfig), "context": cluster}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-o", "-m",
         "meshfleet.istio.mesh_info", "-a", json.dumps(args),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path()))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.split(" => ", 1)[1])["mesh"]


def wait_until_stale(fleet, clusters):
    """The dead run's locks stop being renewed: stale within a minute."""
    for cluster in clusters:
        wait_until(lambda: mesh_facts(fleet, cluster)["lock"]["state"] == "stale", timeout=120,
                   interval=5, what=f"the dead run's lock on {cluster} to go stale")


def failures(output, host):
    """The `fatal: [host]: FAILED! => ...` lines of a run."""
    return [line for line in output.splitlines() if line.startswith(f"fatal: [{host}]")]


def task_output(output, task):
    """What every run of the task printed (its sections of the default callback's output)."""
    return "\n".join(section for section in output.split("\nTASK [")
                     if section.startswith(f"{task}]"))


def assert_upgraded(fleet, api, cluster):
    """Everything on the new revision, the old one pruned, nothing left behind."""
    assert mesh_tags(api) == {"default": NEW, "prod-stable": NEW}, cluster
    assert demo_pods(api, OLD) == [] and len(demo_pods(api, NEW)) == 2, cluster
    assert set(gateway_revisions(api).values()) == {NEW}, cluster
    assert istiods(api) == {f"istiod-{NEW}"}, cluster
    assert lock_holder(api) is None, cluster
    releases = helm_releases(fleet, cluster)
    assert set(releases.values()) == {"deployed"}, (cluster, releases)
    assert not [r for r in releases if r.endswith(OLD)], (cluster, releases)
    assert mesh_facts(fleet, cluster)["problems"] == [], cluster


# ------------------------------------------------------------------ the tests

def test_install_the_old_revision_with_a_demo_workload(run_playbook, apis):
    run = run_playbook("install", extra_vars={"meshfleet_istio_version": "1.30.3"})
    assert run.rc == 0, run.output[-5000:]
    for api in apis.values():
        deploy_demo(api)
    for name, api in apis.items():
        wait_until(lambda: len(demo_pods(api, OLD)) == 2, timeout=300,
                   what=f"demo pods on {OLD} in {name}")


def test_a_cluster_whose_apiserver_dies_mid_upgrade_fails_alone(start_playbook, fleet, apis):
    run = start_playbook("upgrade", extra_vars=dict(UPGRADE, **WAVE_POLICY))
    try:
        wait_until(lambda: has_deployment(apis["cluster3"], f"istiod-{NEW}", "istio-system")
                   or not run.running(), timeout=RUN_TIMEOUT, interval=0.2,
                   what=f"istiod-{NEW} on cluster3")
        assert run.running(), run.output()[-5000:]
        fleet.stop_component("cluster3", "apiserver")
        result = run.wait(RUN_TIMEOUT)
    finally:
        if run.running():
            run.kill()
        if not fleet.cluster("cluster3").alive("kube-apiserver"):
            fleet.start_component("cluster3", "apiserver")
    assert result.rc != 0
    assert result.failed_hosts() == ["cluster3"], result.output[-5000:]
    assert set(result.recap()) == {"cluster1", "cluster2", "cluster3"}
    # The first failure names the cluster (the host) and its apiserver, and says it refused us.
    port = fleet.cluster("cluster3").spec.server.rsplit(":", 1)[1]
    fatal = failures(result.output, "cluster3")
    assert fatal and port in fatal[0] and re.search("connection refused", fatal[0], re.I), fatal
    # `always` tried to release the run lock, which an unreachable cluster refuses: the lock
    # stays, naming the run that failed; the clusters that finished released theirs.
    release = task_output(result.output, "Release the run lock")
    assert "fatal: [cluster3]" in release and "changed: [cluster2]" in release, release
    assert "-upgrade-cluster3-" in (lock_holder(apis["cluster3"]) or "")
    for name in ("cluster1", "cluster2"):
        assert_upgraded(fleet, apis[name], name)
    assert mesh_tags(apis["cluster3"])["prod-stable"] == OLD
    assert len(demo_pods(apis["cluster3"], OLD)) == 2


def test_a_rerun_is_refused_by_the_dead_runs_lock_and_says_how_to_break_it(
        run_playbook, write_counter, fleet, apis):
    holder = lock_holder(apis["cluster3"])
    wait_until_stale(fleet, ["cluster3"])
    counter = write_counter()
    run = run_playbook("upgrade", extra_vars=dict(UPGRADE, **WAVE_POLICY))
    assert run.rc != 0
    assert run.failed_hosts() == ["cluster3"], run.output[-5000:]
    fatal = failures(run.output, "cluster3")
    assert fatal and "another meshfleet run holds this cluster" in fatal[0], fatal
    assert f"{holder}, stale" in fatal[0], fatal
    assert f"meshfleet_break_lock={holder}" in fatal[0], fatal
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}
    assert lock_holder(apis["cluster3"]) == holder


def test_a_rerun_breaking_the_dead_runs_lock_completes(run_playbook, fleet, apis):
    holder = lock_holder(apis["cluster3"])
    with MeshWatch(fleet, OLD) as watch:
        run = run_playbook("upgrade", extra_vars=dict(UPGRADE, **WAVE_POLICY,
                                                      meshfleet_break_lock=holder))
    assert run.rc == 0, run.output[-5000:]
    assert watch.violations == []
    for name, api in apis.items():
        assert_upgraded(fleet, api, name)


def test_reinstall_the_old_revision_on_the_wave(run_playbook, apis):
    for name in ("cluster2", "cluster3"):
        delete_demo(apis[name])
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True}, limit="cluster2,cluster3")
    assert run.rc == 0, run.output[-5000:]
    run = run_playbook("install", extra_vars={"meshfleet_istio_version": "1.30.3"},
                       limit="cluster2,cluster3")
    assert run.rc == 0, run.output[-5000:]
    for name in ("cluster2", "cluster3"):
        deploy_demo(apis[name])
        wait_until(lambda: len(demo_pods(apis[name], OLD)) == 2, timeout=300,
                   what=f"demo pods on {OLD} in {name}")


def test_killing_ansible_playbook_mid_upgrade_orphans_nothing(start_playbook, run_playbook,
                                                              fleet, apis):
    wave = ["cluster2", "cluster3"]
    gateway = f"istio-ingressgateway-{NEW}"
    with MeshWatch(fleet, OLD) as watch:
        run = start_playbook("upgrade", extra_vars=UPGRADE, limit=",".join(wave))
        try:
            # Kill while helm installs the new gateways, before any tag moves.
            wait_until(lambda: all(has_deployment(apis[n], gateway, "istio-gateways")
                                   for n in wave) or not run.running(),
                       timeout=RUN_TIMEOUT, interval=0.2, what=f"{gateway} on {wave}")
            assert run.running(), run.output()[-5000:]
        finally:
            killed = run.kill()
        assert [c for c in killed.values() if "helm upgrade --install" in c], killed
        # Helm died in the middle of installing the gateway: its release is left pending.
        states = {n: helm_releases(fleet, n).get(f"istio-gateways/{gateway}") for n in wave}
        assert "pending-install" in states.values(), states
        holders = {n: lock_holder(apis[n]) for n in wave}
        for name in wave:
            assert f"-upgrade-{name}-" in (holders[name] or ""), holders
            assert mesh_tags(apis[name])["prod-stable"] == OLD

        wait_until_stale(fleet, wave)
        refused = run_playbook("upgrade", extra_vars=UPGRADE, limit=",".join(wave))
        assert refused.rc != 0
        for name in wave:
            fatal = failures(refused.output, name)
            assert fatal and f"meshfleet_break_lock={holders[name]}" in fatal[0], fatal

        rerun = run_playbook("upgrade", limit=",".join(wave), extra_vars=dict(
            UPGRADE, meshfleet_break_lock=",".join(holders.values())))
    assert rerun.rc == 0, rerun.output[-5000:]
    assert watch.violations == []
    for name in wave:
        assert_upgraded(fleet, apis[name], name)


def test_cleanup(run_playbook, apis):
    for api in apis.values():
        delete_demo(api)
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True})
    assert run.rc == 0, run.output[-3000:]
