"""Taking over what the real `istioctl install` of the release made, on one cluster: a
non-revisioned istiod with its own `default` tag and a namespace on istio-injection=enabled.
install.yml refuses and names the upgrade; upgrade.yml moves tags and workloads to meshfleet's
revision with the invariants watched at every poll, refuses to remove what it did not install and
names the istioctl command that does; after it the release's istioctl finds meshfleet's layout.
The tests build on each other in file order."""

import json

import pytest
from kubernetes import client

from localfleet.waits import wait_until
from tests.playbooks import istioctl_judge
from tests.playbooks.canary_setup import CLUSTER, NEW, tear_down
from tests.playbooks.mesh_watch import MeshWatch
from tests.playbooks.takeover import UPGRADE, assert_taken_over, create_app, injected

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

def test_istioctl_installs_a_non_revisioned_control_plane(fleet, api):
    istioctl_judge.istioctl(fleet, CLUSTER, "install", "-y", "--set", "profile=minimal")
    create_app(api, "shop", {"istio-injection": "enabled"})
    wait_until(lambda: injected(api) == ["default", "default"], "web injected by istiod")
    assert istioctl_judge.tags(fleet, CLUSTER) == {"default": "default"}


def test_status_reports_it_as_istioctls_with_its_real_version(run_playbook, tmp_path):
    run = run_playbook("status", extra_vars={"meshfleet_report_dir": str(tmp_path)}, limit=CLUSTER)
    assert run.rc == 0, run.output[-3000:]
    mesh = json.loads((tmp_path / "fleet.json").read_text())[CLUSTER]
    assert mesh["engine"] == "istioctl"
    revision = mesh["revisions"]["default"]
    assert (revision["engine"], revision["version"], revision["deployment"]) == (
        "istioctl", "1.31.0", "istiod")
    assert mesh["problems"] == [
        "istiod default (Deployment istiod, Istio 1.31.0) was installed by istioctl, not Helm: "
        "meshfleet does not manage it; upgrade.yml takes it over"]


def test_install_refuses_and_names_the_upgrade_as_the_way_out(run_playbook, write_counter):
    counter = write_counter()
    run = run_playbook("install", limit=CLUSTER)
    assert run.rc != 0
    assert ("the non-revisioned istiod default (Deployment istiod, Istio 1.31.0) was installed by "
            "istioctl, not meshfleet; take it over with the upgrade playbook") in run.output
    assert counter.writes()[CLUSTER] == []


def test_the_upgrade_takes_over_and_leaves_istioctls_objects_to_istioctl(run_playbook, fleet,
                                                                         api):
    with MeshWatch(fleet, "default") as watch:
        run = run_playbook("upgrade", extra_vars=UPGRADE, limit=CLUSTER)
    assert watch.violations == []
    assert watch.injection_probes > 0, "the watcher never probed injection"
    assert run.rc != 0, "the upgrade removed an istiod that meshfleet did not install"
    assert ("revision default not removed: no Helm release owns Deployment istio-system/istiod; "
            "meshfleet removes only what Helm installed: it was installed by istioctl: "
            "`istioctl uninstall --revision default -y` removes that revision's objects and no "
            "other revision's, then run again") in run.output
    assert istioctl_judge.tags(fleet, CLUSTER) == {"default": NEW, "prod-stable": NEW}
    assert injected(api) == [NEW, NEW]


def test_after_istioctl_removes_its_revision_the_upgrade_completes(run_playbook, fleet, api,
                                                                   write_counter, tmp_path):
    with MeshWatch(fleet, "default") as watch:
        istioctl_judge.istioctl(fleet, CLUSTER, "uninstall", "--revision", "default", "-y")
        run = run_playbook("upgrade", extra_vars=UPGRADE, limit=CLUSTER)
    assert run.rc == 0, run.output[-4000:]
    assert watch.violations == []
    installed = {d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(
        "istio-system").items}
    assert installed == {f"istiod-{NEW}"}
    assert_taken_over(run_playbook, fleet, CLUSTER, api, tmp_path, write_counter)


def test_cleanup(run_playbook, api):
    client.CoreV1Api(api).delete_namespace("shop")
    tear_down(run_playbook, api, extra_namespaces=("shop",))
