"""The job templates' playbooks run the way AWX / Automation Controller runs them (ansible-runner,
private data directory, generated inventory, the kubeconfig credential injected as a file),
including an upgrade sliced into two jobs that run at the same time. The tests build on each
other in file order."""

import base64
import datetime
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from localfleet import audit
from localfleet.pytest_plugin import api_client
from localfleet.waits import wait_until
from tests.playbooks.canary_setup import deploy_web, mesh_tags
from tests.playbooks.controller_job import ControllerJob, fleet_inventory

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

OLD, NEW = "1-30-3", "1-31-0"
WAVES = {"canary": ["cluster1"], "wave1": ["cluster2", "cluster3"]}
# Survey answers of the upgrade template, and the wait a sliced template sets for the canary.
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_prune_after": 0,
           "meshfleet_rollout_timeout": 120}
SLICED_UPGRADE = dict(UPGRADE, meshfleet_canary_wait=900)
GATE_TASK = "Wait for the canary wave to pass its upgrade to the target"
RECORD = ("kube-system", "meshfleet-upgrade")


@pytest.fixture(scope="module")
def apis(fleet):
    return {c.spec.name: api_client(fleet, c.spec.name) for c in fleet.clusters}


@pytest.fixture(scope="module")
def controller(fleet, tmp_path_factory):
    """Launches jobs as the controller would: fleet inventory with wave groups, the fleet's
    kubeconfig as the credential, a new job id per job. Every job's event stream and artifacts
    are searched for the credential's secrets."""
    workdir = tmp_path_factory.mktemp("controller")
    inventory = fleet_inventory(fleet, WAVES)
    kubeconfig = Path(fleet.kubeconfig).read_text()
    secrets = secrets_of(kubeconfig)
    assert secrets, "the fleet's kubeconfig holds no key, certificate or token to look for"
    job_ids = iter(range(101, 200))

    def launch(playbook, extra_vars=None, limit=None, check=False, slice_count=1):
        jobs = [ControllerJob(workdir, next(job_ids), playbook,
                              inventory.sliced(number, slice_count), kubeconfig,
                              dict(extra_vars or {}, meshfleet_report_dir=str(workdir / "report")),
                              limit, check)
                for number in range(1, slice_count + 1)]
        results = [job.wait() for job in jobs]
        for result in results:
            assert_no_secret_in(result, secrets)
        return results

    return launch


def record(api):
    configmap = client.CoreV1Api(api).read_namespaced_config_map(RECORD[1], RECORD[0])
    return configmap.data


def web_pods_on(api, revision):
    pods = client.CoreV1Api(api).list_namespaced_pod("store", label_selector="app=web").items
    return [p.metadata.name for p in pods
            if (p.metadata.annotations or {}).get("istio.io/rev") == revision
            and p.metadata.deletion_timestamp is None]


def deploy_demo(api, with_bare_pod):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": "store", "labels": {"istio.io/rev": "prod-stable"}}})
    spec = {"containers": [{"name": "web", "image": "example.invalid/web:1"}]}
    apps.create_namespaced_deployment("store", {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}})
    if with_bare_pod:  # keeps the old revision in use, so rollback has something to go back to
        core.create_namespaced_pod("store", {"metadata": {"name": "bare", "labels": {"app": "bare"}},
                                            "spec": spec})


def secrets_of(kubeconfig_text):
    """The credential's secret material, raw and decoded (a PEM body line of each)."""
    config = yaml.safe_load(kubeconfig_text)
    found = []
    for entry in config.get("users", []):
        user = entry.get("user") or {}
        for key in ("client-key-data", "client-certificate-data", "token"):
            if user.get(key):
                found.append(user[key])
    for entry in config.get("clusters", []):
        data = (entry.get("cluster") or {}).get("certificate-authority-data")
        if data:
            found.append(data)
    decoded = []
    for value in found:
        try:
            pem = base64.b64decode(value, validate=True).decode()
        except ValueError:
            continue
        decoded += [line for line in pem.splitlines()[1:2] if len(line) > 40]
    return found + decoded


def assert_no_secret_in(job, secrets):
    searched = [path for path in job.artifacts.rglob("*") if path.is_file()]
    assert searched, "the runner wrote no artifacts"
    texts = [p.read_text(errors="replace") for p in searched] + [job.stdout()]
    texts += [repr(e) for e in job.events]
    for secret in secrets:
        leaks = [str(p) for p, text in zip(searched + ["stdout", "events"], texts) if secret in text]
        assert not leaks, f"credential material found in {leaks}"


def test_check_mode_job_predicts_the_install_and_writes_nothing(controller, write_counter):
    counter = write_counter()
    [job] = controller("install", {"meshfleet_istio_version": "1.30.3"}, check=True)
    assert job.rc == 0, job.stdout()[-5000:]
    assert job.status == "successful"
    assert sorted(job.changed_hosts()) == ["cluster1", "cluster2", "cluster3"]
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}


def test_install_job_with_the_kubeconfig_credential(controller, apis):
    [job] = controller("install", {"meshfleet_istio_version": "1.30.3"})
    assert job.rc == 0, job.stdout()[-5000:]
    assert sorted(job.stats()["ok"]) == ["cluster1", "cluster2", "cluster3"]
    assert job.failed_hosts() == []
    for name, api in apis.items():
        assert mesh_tags(api) == {"default": OLD, "prod-stable": OLD}
        deploy_demo(api, with_bare_pod=name == "cluster1")
    for name, api in apis.items():
        wait_until(lambda: len(web_pods_on(api, OLD)) == 2, what=f"web pods on {OLD} in {name}")


def test_status_job_publishes_the_fleet_report_for_later_workflow_nodes(controller):
    [job] = controller("status")
    assert job.rc == 0, job.stdout()[-5000:]
    report = job.stats()["artifact_data"]["meshfleet_report"]
    assert sorted(report) == ["cluster1", "cluster2", "cluster3"]
    for mesh in report.values():
        assert mesh["tags"] == {"default": OLD, "prod-stable": OLD}
        assert mesh["problems"] == []


def test_later_waves_are_refused_before_the_canary_wave_upgraded(controller, write_counter):
    counter = write_counter()
    [job] = controller("upgrade", dict(UPGRADE, meshfleet_hosts="wave1"))
    assert job.rc != 0
    assert job.failed_hosts() == ["cluster2", "cluster3"]
    output = job.stdout()
    assert "cluster2: the canary wave has not passed an upgrade to 1-31-0" in output
    assert "cluster1: no upgrade recorded" in output
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}


def test_canary_job_upgrades_the_canary_wave_only(controller, apis):
    [job] = controller("upgrade", dict(UPGRADE, meshfleet_hosts="canary"))
    assert job.rc == 0, job.stdout()[-5000:]
    assert mesh_tags(apis["cluster1"]) == {"default": NEW, "prod-stable": NEW}
    assert record(apis["cluster1"])["phase"] == "passed"
    assert "job" in record(apis["cluster1"])["run_id"]
    for name in ("cluster2", "cluster3"):
        assert mesh_tags(apis[name]) == {"default": OLD, "prod-stable": OLD}
    published = job.stats()["artifact_data"]["meshfleet_upgrade"]
    assert published["cluster1"]["result"] == "upgraded"
    assert published["cluster1"]["kept_revisions"] == [OLD]
    assert [w["name"] for w in published["cluster1"]["not_moved"]] == ["bare"]


def test_later_waves_are_refused_after_the_canary_was_rolled_back(controller, apis,
                                                                   write_counter):
    [rollback] = controller("rollback", limit="canary")
    assert rollback.rc == 0, rollback.stdout()[-5000:]
    assert mesh_tags(apis["cluster1"]) == {"default": OLD, "prod-stable": OLD}
    assert record(apis["cluster1"])["phase"] == "rolled-back"
    counter = write_counter()
    [job] = controller("upgrade", dict(UPGRADE, meshfleet_hosts="wave1"))
    assert job.rc != 0
    assert job.failed_hosts() == ["cluster2", "cluster3"]
    assert "cluster1: rolled-back 1-31-0" in job.stdout()
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}


def test_a_canary_failing_in_a_sliced_upgrade_stops_the_other_slice_at_once(controller, apis,
                                                                           write_counter):
    core, apps = client.CoreV1Api(apis["cluster1"]), client.AppsV1Api(apis["cluster1"])
    deploy_web(apis["cluster1"], "gate", app="probe", hold="not-ready")
    counter = write_counter()
    slices = controller("upgrade", dict(SLICED_UPGRADE, meshfleet_canary_namespaces=["gate"],
                                        meshfleet_health_timeout=20), slice_count=2)
    assert [job.failed_hosts() for job in slices] == [["cluster1"], ["cluster2"]]
    assert record(apis["cluster1"])["phase"] == "failed"
    [gate] = slices[1].host_events(GATE_TASK, "cluster2", "runner_on_failed")
    assert gate["res"]["state"] == "closed"
    assert gate["res"]["attempts"] > 1, "cluster2's slice was not waiting when the canary failed"
    assert gate["res"]["attempts"] < 60, "cluster2's slice waited out its whole allowance"
    writes = counter.events()
    assert (writes["cluster2"], writes["cluster3"]) == ([], [])
    # The canary's slice went no further than the input checks (one task) for cluster3.
    assert slices[0].stats()["ok"].get("cluster3", 0) <= 1, "the canary's slice went on after it failed"

    # The workflow's failure path, once the probe is fixed: rollback for every host of the node.
    apps.patch_namespaced_deployment("probe", "gate", {"spec": {"template": {"metadata": {
        "labels": {"localfleet.meshfleet.io/hold": None}}}}})
    [rollback] = controller("rollback", {"meshfleet_rollout_timeout": 120})
    assert rollback.rc == 0, rollback.stdout()[-5000:]
    for name in ("cluster2", "cluster3"):
        assert f"{name}: only {OLD} is installed and no upgrade to it is recorded" in rollback.stdout()
    assert mesh_tags(apis["cluster1"]) == {"default": OLD, "prod-stable": OLD}
    assert record(apis["cluster1"])["phase"] == "rolled-back"
    assert record(apis["cluster1"])["revision"] == NEW
    probes = core.list_namespaced_pod("gate", label_selector="app=probe").items
    assert {(p.metadata.annotations or {}).get("istio.io/rev") for p in probes
            if p.metadata.deletion_timestamp is None} == {OLD}
    core.delete_namespace("gate")
    wait_until(lambda: not any(n.metadata.name == "gate" for n in core.list_namespace().items),
               what="gate namespace gone")


def test_a_sliced_upgrade_changes_no_later_wave_before_the_canary_passed(controller, apis,
                                                                        write_counter):
    counter = write_counter()
    slices = controller("upgrade", SLICED_UPGRADE, slice_count=2)
    for job in slices:
        assert job.rc == 0, job.stdout()[-5000:]
    # The controller's slicing: [cluster1, cluster3] and [cluster2].
    assert [sorted(job.stats()["ok"]) for job in slices] == [["cluster1", "cluster3"], ["cluster2"]]
    [gate] = slices[1].host_events(GATE_TASK, "cluster2")
    assert gate["res"]["attempts"] > 1, "cluster2's slice did not have to wait for the canary"

    writes = counter.events()
    record_writes = [e for e in writes["cluster1"] if e["objectRef"].get("name") == RECORD[1]]
    canary_passed = stamp(record_writes[-1]["stageTimestamp"])
    assert record(apis["cluster1"])["phase"] == "passed"
    for name in ("cluster2", "cluster3"):
        first_write = min(stamp(e["requestReceivedTimestamp"]) for e in writes[name])
        assert first_write > canary_passed, f"{name} was changed before the canary passed"

    # Every cluster upgraded exactly once, by the slice that holds it.
    for job, hosts in zip(slices, (["cluster1", "cluster3"], ["cluster2"])):
        for name in hosts:
            assert f"-job{job.job_id}-" in record(apis[name])["run_id"]
    for name, api in apis.items():
        restarts = [e for e in writes[name] if e["objectRef"].get("resource") == "deployments"
                    and e["objectRef"].get("namespace") == "store"]
        assert len(restarts) == 1, (name, [audit.describe(e) for e in restarts])
        assert record(api)["phase"] == "passed"
        assert mesh_tags(api) == {"default": NEW, "prod-stable": NEW}
        wait_until(lambda: len(web_pods_on(api, NEW)) == 2, what=f"web pods on {NEW} in {name}")
    published = [job.stats()["artifact_data"]["meshfleet_upgrade"] for job in slices]
    assert sorted(published[0]) == ["cluster1", "cluster3"] and sorted(published[1]) == ["cluster2"]


def stamp(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_uninstall_is_refused_while_another_run_holds_the_cluster(run_playbook, apis):
    coordination = client.CoordinationV1Api(apis["cluster2"])
    # The upgrade jobs left the lock released (a Lease without holder): another run's replaces it.
    lease = coordination.read_namespaced_lease("meshfleet-run-lock", "kube-system")
    coordination.replace_namespaced_lease("meshfleet-run-lock", "kube-system", {
        "metadata": {"name": "meshfleet-run-lock",
                     "resourceVersion": lease.metadata.resource_version},
        "spec": {"holderIdentity": "20261126T160000Z-upgrade-cluster2-job7-1",
                 "leaseDurationSeconds": 3600,
                 "renewTime": datetime.datetime.now(datetime.timezone.utc)}})
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True}, limit="cluster2")
    assert run.rc != 0
    assert "20261126T160000Z-upgrade-cluster2-job7-1" in run.output
    assert mesh_tags(apis["cluster2"]) == {"default": NEW, "prod-stable": NEW}
    coordination.delete_namespaced_lease("meshfleet-run-lock", "kube-system")


def test_cleanup(run_playbook, apis):
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True})
    assert run.rc == 0, run.output[-3000:]
    for name, api in apis.items():
        client.CoreV1Api(api).delete_namespace("store")
    for name, api in apis.items():
        wait_until(lambda: not any(n.metadata.name == "store"
                                   for n in client.CoreV1Api(api).list_namespace().items),
                   timeout=180, what=f"store namespace gone in {name}")
