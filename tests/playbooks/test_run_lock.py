"""One writer per cluster, on two clusters of the fleet: an install started during an upgrade is
refused where the upgrade holds the lock; a run killed as `kill -KILL -<pgid>` kills it (its
workers live on in sessions of their own) stops writing, in the middle of a task and at a task
boundary; the lock a dead run left expires and the next run takes it without being told its
name; a live holder's lock is never taken by naming it, only by forcing. The tests build on each
other in file order (one scenario)."""

import datetime
import json
import subprocess
import threading
import time

import pytest
from kubernetes import client

from localfleet import gobuild
from localfleet.pytest_plugin import api_client
from localfleet.waits import wait_until
from tests.playbooks.conftest import children_of, command_line
from tests.playbooks.canary_setup import mesh_tags
from tests.playbooks.test_upgrade_failures import (failures, lock_holder, mesh_facts,
                                                   task_output)

pytestmark = [pytest.mark.fleet, pytest.mark.scenario, pytest.mark.timeout(1800)]

OLD, NEW = "1-30-3", "1-31-0"
CLUSTERS = "cluster1,cluster2"
APP = "orders"
# cluster2's restarts, one Deployment at a time, take long enough to kill the run among them.
WORKLOADS = {"cluster1": ["w1", "w2"], "cluster2": ["w1", "w2", "w3", "w4", "w5", "w6", "w7"]}
# A short lock: renewed every 2 s, stale after 6 s without a renewal, expired after 12 s.
TTL = 12
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_canary_hosts": "cluster1",
           "meshfleet_prune_after": 0, "meshfleet_rollout_timeout": 90, "meshfleet_lock_ttl": TTL}
INSTALL_OLD = {"meshfleet_istio_version": "1.30.3", "meshfleet_application_namespaces": [APP]}
# After a kill: the module's watch notices in a second, a request in flight ends, the renewer
# sees the controller gone before its next renewal.
SETTLE = 5
QUIET = 20
RUN_TIMEOUT = 900


@pytest.fixture(scope="module")
def apis(fleet):
    return {name: api_client(fleet, name) for name in CLUSTERS.split(",")}


def lease(api):
    return lease_of(client.CoordinationV1Api(api))


def lock_state(fleet, cluster):
    return mesh_facts(fleet, cluster)["lock"]


def upgrade_passed(fleet, cluster):
    """The upgrade recorded its pass: the next step is the pause before pruning."""
    record = mesh_facts(fleet, cluster)["upgrade_record"]
    return record.get("phase") == "passed" and record.get("revision") == NEW


def restarted(api):
    """The Deployments of the application namespace whose pods were restarted by meshfleet."""
    return sorted(d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(APP).items
                  if "kubectl.kubernetes.io/restartedAt" in
                  (d.spec.template.metadata.annotations or {}))


def pods_on(api, revision):
    return [p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(APP).items
            if (p.metadata.annotations or {}).get("istio.io/rev") == revision]


def deploy(api, name):
    labels = {"app": name}
    client.AppsV1Api(api).create_namespaced_deployment(APP, {
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": name,
                                                       "image": "example.invalid/app:1"}]}}}})


def base_chart_history(fleet, cluster):
    proc = subprocess.run(
        [str(gobuild.binaries_dir() / "helm"), "history", "istio-base", "-n", "istio-system",
         "-o", "json", "--kubeconfig", str(fleet.kubeconfig), "--kube-context", cluster],
        capture_output=True, text=True, check=True)
    return [entry["chart"] for entry in json.loads(proc.stdout)]


def descendants(pid):
    """The processes under `pid`, by pid, with their command lines."""
    found, frontier = {}, [pid]
    while frontier:
        frontier = [child for child in children_of(frontier) if child not in found]
        found.update((child, command_line(child)) for child in frontier)
    return found


def quiet_after_kill(write_counter, cluster):
    """Writes by meshfleet's identity at the cluster from SETTLE seconds after a kill on."""
    time.sleep(SETTLE)
    counter = write_counter()
    time.sleep(QUIET)
    return counter.writes()[cluster]


class LiveHolder:
    """Another run's lock, renewed every second while it lives, as meshfleet renews its own."""

    def __init__(self, api, holder):
        self.coordination = client.CoordinationV1Api(api)
        self.holder = holder
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True)

    def _body(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        return {"metadata": {"name": "meshfleet-run-lock",
                             "annotations": {"meshfleet.io/renew-seconds": "1"}},
                "spec": {"holderIdentity": self.holder, "leaseDurationSeconds": 30,
                         "acquireTime": now, "renewTime": now}}

    def _renew(self):
        while not self.stopped.wait(1):
            current = lease_of(self.coordination)
            if current is None or current.spec.holder_identity != self.holder:
                return
            current.spec.renew_time = datetime.datetime.now(datetime.timezone.utc)
            self.coordination.replace_namespaced_lease("meshfleet-run-lock", "kube-system",
                                                       current)

    def __enter__(self):
        existing = lease_of(self.coordination)
        if existing is None:
            self.coordination.create_namespaced_lease("kube-system", self._body())
        else:
            body = self._body()
            body["metadata"]["resourceVersion"] = existing.metadata.resource_version
            self.coordination.replace_namespaced_lease("meshfleet-run-lock", "kube-system", body)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(10)


def lease_of(coordination):
    try:
        return coordination.read_namespaced_lease("meshfleet-run-lock", "kube-system")
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


# ------------------------------------------------------------------ the tests

def test_install_the_old_revision_with_workloads(run_playbook, apis):
    for api in apis.values():
        client.CoreV1Api(api).create_namespace({"metadata": {"name": APP}})
    run = run_playbook("install", extra_vars=INSTALL_OLD, limit=CLUSTERS)
    assert run.rc == 0, run.output[-5000:]
    for name, api in apis.items():
        for workload in WORKLOADS[name]:
            deploy(api, workload)
    for name, api in apis.items():
        wait_until(lambda: len(pods_on(api, OLD)) == len(WORKLOADS[name]), timeout=300,
                   what=f"injected pods in {name}")


def test_an_install_during_an_upgrade_is_refused_where_the_upgrade_holds_the_lock(
        start_playbook, run_playbook, write_counter, fleet, apis):
    upgrade = start_playbook("upgrade", extra_vars=dict(UPGRADE, meshfleet_prune_after=60),
                             limit="cluster1")
    try:
        # The upgrade holds the lock and waits before pruning, its new revision promoted.
        wait_until(lambda: upgrade_passed(fleet, "cluster1") or not upgrade.running(),
                   timeout=RUN_TIMEOUT, what="the pause before pruning")
        assert "-upgrade-cluster1-" in (lock_holder(apis["cluster1"]) or "")
        assert upgrade.running(), upgrade.output()[-5000:]
        assert lock_state(fleet, "cluster1")["state"] == "live"
        counter = write_counter()
        install = run_playbook("install", extra_vars=INSTALL_OLD, limit=CLUSTERS)
        writes_on_cluster2 = counter.writes()["cluster2"]
        result = upgrade.wait(RUN_TIMEOUT)
    finally:
        if upgrade.running():
            upgrade.kill()
    assert install.rc != 0
    assert install.failed_hosts() == ["cluster1"], install.output[-5000:]
    fatal = failures(install.output, "cluster1")
    assert fatal and "another meshfleet run holds this cluster" in fatal[0], fatal
    assert ", live: renewed" in fatal[0] and "meshfleet_force_break_lock=" in fatal[0], fatal
    # Refused by the first read (it checks the lock of a cluster that is not converged), which
    # comes before every task that writes.
    first_read = task_output(install.output,
                             "Read the cluster's mesh and compare it with its last converged install")
    assert "fatal: [cluster1]" in first_read, install.output[-5000:]
    assert "changed: [cluster1]" not in install.output
    # The free cluster is converged: the install wrote nothing there, and took no lock.
    assert install.recap()["cluster2"]["changed"] == 0 and writes_on_cluster2 == []
    assert result.rc == 0, result.output[-5000:]
    # The upgrade's base chart was never put back to the older version in between.
    history = base_chart_history(fleet, "cluster1")
    assert set(history[history.index("base-1.31.0"):]) == {"base-1.31.0"}, history
    assert mesh_tags(apis["cluster1"]) == {"default": NEW, "prod-stable": NEW}
    assert lease(apis["cluster1"]).spec.holder_identity is None  # released, kept as a fence


def test_a_run_killed_in_the_middle_of_a_task_stops_writing(start_playbook, write_counter, fleet,
                                                            apis):
    """Killed while workload_migrate restarts the Deployments one by one: the module, left
    running in its worker, stops at once instead of restarting the rest."""
    api = apis["cluster2"]
    upgrade = start_playbook("upgrade", extra_vars=UPGRADE, limit="cluster2")
    try:
        wait_until(lambda: restarted(api) or not upgrade.running(), timeout=RUN_TIMEOUT,
                   interval=0.2, what="the first restart")
        assert upgrade.running(), upgrade.output()[-5000:]
        modules = [pid for pid, command in descendants(upgrade.proc.pid).items()
                   if "AnsiballZ_workload_migrate" in command]
        holder = lock_holder(api)
        upgrade.kill_group()
        time.sleep(SETTLE)
        left = [pid for pid in modules if command_line(pid)]
        counter = write_counter()
        before = restarted(api)
        time.sleep(QUIET)
        writes = counter.writes()["cluster2"]
    finally:
        if upgrade.running():
            upgrade.kill()
    assert modules and left == [], (modules, left)
    assert writes == []
    assert restarted(api) == before and len(before) < len(WORKLOADS["cluster2"]), before
    assert "-upgrade-cluster2-" in holder and lock_holder(api) == holder
    # The report names the dead run's lock and the upgrade it left half done.
    facts = mesh_facts(fleet, "cluster2")
    assert facts["lock"]["state"] in ("stale", "expired"), facts["lock"]
    assert facts["upgrade_record"]["phase"] == "started"
    problems = " ".join(facts["problems"])
    assert f"run lock left by {holder}" in problems and "did not finish" in problems, problems


def test_a_run_killed_between_tasks_stops_writing(start_playbook, write_counter, fleet, apis):
    api = apis["cluster2"]
    upgrade = start_playbook("upgrade", extra_vars=dict(UPGRADE, meshfleet_prune_after=120),
                             limit="cluster2")
    try:
        # The expired lock of the killed run is taken without naming it; the run then waits
        # before pruning (a pause: no module runs) while its renewer keeps the lock live.
        wait_until(lambda: upgrade_passed(fleet, "cluster2") or not upgrade.running(),
                   timeout=RUN_TIMEOUT, what="the pause before pruning")
        assert upgrade.running(), upgrade.output()[-5000:]
        time.sleep(2 * TTL)
        holder = lock_holder(api)
        assert "-upgrade-cluster2-" in holder
        state = client.CoordinationV1Api(api).read_namespaced_lease("meshfleet-run-lock",
                                                                    "kube-system").spec
        age = datetime.datetime.now(datetime.timezone.utc) - state.renew_time
        assert age.total_seconds() < 6, "the lock was not renewed during the pause"
        upgrade.kill_group()
        writes = quiet_after_kill(write_counter, "cluster2")
    finally:
        if upgrade.running():
            upgrade.kill()
    assert "taking over the run lock from" in upgrade.output()
    assert writes == []
    assert restarted(api) == WORKLOADS["cluster2"] and pods_on(api, OLD) == []


def test_the_dead_runs_lock_expires_and_the_next_run_takes_it_unnamed(run_playbook, fleet, apis):
    api = apis["cluster2"]
    dead = lock_holder(api)
    wait_until(lambda: lock_state(fleet, "cluster2")["state"] == "expired", timeout=60,
               interval=2, what="the dead run's lock to expire")
    run = run_playbook("upgrade", extra_vars=UPGRADE, limit="cluster2")
    assert run.rc == 0, run.output[-5000:]
    assert f"taking over the run lock from {dead}" in run.output
    assert mesh_tags(api) == {"default": NEW, "prod-stable": NEW}
    facts = mesh_facts(fleet, "cluster2")
    assert list(facts["revisions"]) == [NEW] and facts["problems"] == [], facts["problems"]
    assert facts["lock"]["state"] == "free"


def test_a_live_holders_lock_is_never_taken_by_naming_it(run_playbook, write_counter, fleet,
                                                        apis):
    api = apis["cluster2"]
    with LiveHolder(api, "live-run"):
        counter = write_counter()
        named = run_playbook("uninstall", limit="cluster2", extra_vars={
            "meshfleet_force": True, "meshfleet_break_lock": "live-run"})
        state = lock_state(fleet, "cluster2")
        writes = [w for w in counter.writes()["cluster2"] if "leases" not in w]
        forced = run_playbook("uninstall", limit="cluster2", extra_vars={
            "meshfleet_force": True, "meshfleet_force_break_lock": "live-run"})
    assert named.rc != 0
    fatal = failures(named.output, "cluster2")
    assert fatal and "live-run, live" in fatal[0], fatal
    assert (state["state"], state["holder"]) == ("live", "live-run")
    assert writes == []
    assert forced.rc == 0, forced.output[-5000:]
    assert "taking over the run lock from live-run" in forced.output
    assert lease(api) is None  # the uninstall forgets the lock with the mesh


def test_cleanup(run_playbook, apis):
    for api in apis.values():
        client.CoreV1Api(api).delete_namespace(APP)
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True}, limit="cluster1")
    assert run.rc == 0, run.output[-3000:]
    for name, api in apis.items():
        core = client.CoreV1Api(api)
        wait_until(lambda: APP not in {n.metadata.name for n in core.list_namespace().items},
                   timeout=300, what=f"namespace {APP} gone from {name}")
