"""upgrade.yml --check --diff on a fleet one minor behind (cluster1 the canary, the others a later
wave, each with a workload on the stable tag): it completes, writes nothing, and predicts for
every cluster the releases, tags, namespaces, restarts and cut-overs; then the real upgrade does
exactly that, object by object. The tests build on each other in file order."""

import json
import re

import pytest
from kubernetes import client

from localfleet.pytest_plugin import api_client
from localfleet.waits import wait_until
from tests.playbooks.canary_setup import deploy_web, injected_by

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

OLD, NEW = "1-30-3", "1-31-0"
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_canary_hosts": "cluster1",
           "meshfleet_prune_after": 0, "meshfleet_rollout_timeout": 180}
APP = "shop"
SUMMARY = re.compile(r'"msg": ("meshfleet upgrade summary (?:[^"\\]|\\.)*")')
COMPARED = ("from", "to", "releases", "tags", "namespaces", "restarted", "cut_over", "prune")


@pytest.fixture(scope="module")
def apis(fleet):
    return {c.spec.name: api_client(fleet, c.spec.name) for c in fleet.clusters}


def summaries(output):
    found = {}
    for quoted in SUMMARY.findall(output):
        summary = json.loads(json.loads(quoted)[len("meshfleet upgrade summary "):])
        found[summary["cluster"]] = summary
    return found


def test_a_fleet_one_minor_behind(run_playbook, apis):
    run = run_playbook("install", extra_vars={"meshfleet_istio_version": "1.30.3"})
    assert run.rc == 0, run.output[-4000:]
    for api in apis.values():
        deploy_web(api, APP, replicas=2)
    for name, api in apis.items():
        wait_until(lambda: injected_by(api, APP) == {OLD}, what=f"web on {OLD} in {name}")


@pytest.fixture(scope="module")
def prediction():
    return {}


def test_check_mode_predicts_every_cluster_and_writes_nothing(run_playbook, write_counter, apis,
                                                              prediction):
    counter = write_counter()
    run = run_playbook("upgrade", extra_vars=UPGRADE, check=True, diff=True)
    assert run.rc == 0, run.output[-6000:]
    assert counter.writes() == {name: [] for name in apis}
    found = summaries(run.output)
    assert sorted(found) == sorted(apis), run.output[-4000:]
    for name, summary in found.items():
        assert summary["check_mode"] is True
        assert summary["from"] == OLD and summary["to"] == NEW
        assert summary["restarted"] == [f"{APP}/Deployment/web"], summary
        assert summary["cut_over"] == ["istio-egressgateway", "istio-ingressgateway"], summary
    for later in sorted(apis)[1:]:
        assert f"{later}: check mode assumes that the canary wave passes its upgrade to {NEW}" \
            in run.output
    assert "fatal: [" not in run.output
    assert "is predicted on the assumption that the gateway pods this run creates become Ready" \
        in run.output
    prediction.update(found)


def test_the_real_upgrade_does_what_check_mode_predicted(run_playbook, write_counter, apis,
                                                         prediction):
    assert prediction, "the check-mode test must run first"
    counter = write_counter()
    run = run_playbook("upgrade", extra_vars=UPGRADE)
    assert run.rc == 0, run.output[-6000:]
    done = summaries(run.output)
    assert sorted(done) == sorted(prediction)
    writes = counter.writes()
    for name in apis:
        assert done[name]["check_mode"] is False
        for key in COMPARED:
            assert done[name][key] == prediction[name][key], (name, key)
        # and the writes behind them, object by object
        for ref in prediction[name]["restarted"]:
            namespace, _kind, workload = ref.split("/")
            assert any(w.startswith(f"patch deployments {namespace}/{workload} ")
                       for w in writes[name]), (name, ref)
        for service in prediction[name]["cut_over"]:
            assert any(w.startswith(f"patch services istio-gateways/{service} ")
                       for w in writes[name]), (name, service)
        for release in prediction[name]["releases"]:
            assert any(f"sh.helm.release.v1.{release}." in w for w in writes[name]), (name, release)
        assert injected_by(apis[name], APP) == {NEW}


def test_cleanup(run_playbook, apis):
    for api in apis.values():
        client.CoreV1Api(api).delete_namespace(APP)
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True})
    assert run.rc == 0, run.output[-3000:]
