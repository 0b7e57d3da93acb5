"""Taking over a non-revisioned Istio that Helm installed, on one cluster, the way the upstream
install guide does it: `helm install istio-base base -n istio-system --create-namespace` and
`helm install istiod istiod -n istio-system` of 1.30.3 with the charts' own values, and a
namespace on istio-injection=enabled. install.yml refuses and names the upgrade; upgrade.yml to
1.31.0 moves the workloads to meshfleet's revision with the invariants watched at every poll and
removes the `istiod` release once nothing uses it; the release's istioctl then finds meshfleet's
layout. The tests build on each other in file order."""

import json

import pytest
from kubernetes import client

from localfleet.waits import wait_until
from tests.playbooks.canary_setup import CLUSTER, NEW, chart, helm, releases, tear_down
from tests.playbooks.mesh_watch import MeshWatch
from tests.playbooks.takeover import UPGRADE, assert_taken_over, create_app, injected

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

def test_helm_installs_a_non_revisioned_control_plane(fleet, api):
    helm(fleet, "install", "istio-base", chart("base", "1.30.3"), "-n", "istio-system",
         "--create-namespace", "--set", "defaultRevision=default")
    helm(fleet, "install", "istiod", chart("istiod", "1.30.3"), "-n", "istio-system", "--wait",
         "--timeout", "5m")
    create_app(api, "shop", {"istio-injection": "enabled"})
    wait_until(lambda: injected(api) == ["default", "default"], "web injected by istiod")
    assert releases(fleet) == ["istio-system/istio-base", "istio-system/istiod"]


def test_status_reports_a_helm_release_meshfleet_does_not_manage(run_playbook, tmp_path):
    run = run_playbook("status", extra_vars={"meshfleet_report_dir": str(tmp_path)}, limit=CLUSTER)
    assert run.rc == 0, run.output[-3000:]
    mesh = json.loads((tmp_path / "fleet.json").read_text())[CLUSTER]
    revision = mesh["revisions"]["default"]
    assert (revision["engine"], revision["version"], revision["deployment"]) == (
        "helm", "1.30.3", "istiod")
    assert ("istiod default (Deployment istiod, Istio 1.30.3) is a non-revisioned Helm release "
            "meshfleet did not install: meshfleet does not manage it; upgrade.yml takes it over"
            ) in mesh["problems"]


def test_install_refuses_and_names_the_upgrade_as_the_way_out(run_playbook, write_counter):
    counter = write_counter()
    run = run_playbook("install", limit=CLUSTER)
    assert run.rc != 0
    assert ("the non-revisioned istiod default (Deployment istiod, Istio 1.30.3) is a Helm "
            "release meshfleet did not install (meshfleet installs revisioned control planes); "
            "take it over with the upgrade playbook") in run.output
    assert counter.writes()[CLUSTER] == []


def test_the_upgrade_takes_over_and_removes_the_istiod_release(run_playbook, fleet, api):
    with MeshWatch(fleet, "default") as watch:
        run = run_playbook("upgrade", extra_vars=UPGRADE, limit=CLUSTER)
    assert run.rc == 0, run.output[-5000:]
    assert watch.violations == []
    assert watch.injection_probes > 0, "the watcher never probed injection"
    assert injected(api) == [NEW, NEW]
    installed = {d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(
        "istio-system").items}
    assert installed == {f"istiod-{NEW}"}
    assert releases(fleet) == [f"istio-gateways/istio-egressgateway-{NEW}",
                               f"istio-gateways/istio-ingressgateway-{NEW}",
                               "istio-system/istio-base", f"istio-system/istiod-{NEW}"]
    legacy = [m.metadata.name for m in client.AdmissionregistrationV1Api(api)
              .list_mutating_webhook_configuration().items
              if m.metadata.name == "istio-sidecar-injector"]
    assert legacy == [], "the istiod release's injector outlived it"


def test_the_release_judges_the_result_and_a_rerun_writes_nothing(run_playbook, fleet, api,
                                                                  write_counter, tmp_path):
    assert_taken_over(run_playbook, fleet, CLUSTER, api, tmp_path, write_counter)


def test_cleanup(run_playbook, api):
    client.CoreV1Api(api).delete_namespace("shop")
    tear_down(run_playbook, api, extra_namespaces=("shop",))
