"""A revisioned install in the guide's layout made by hand, on one cluster, adopted with no
outage: the upstream charts of 1.30.3 installed with helm under meshfleet's release names (istiod
`istiod-1-30-3` rendering the `prod-stable` tag itself through `revisionTags`, a gateway
`istio-ingressgateway-1-30-3` whose pods also carry `version: 1-30-3`, and a second gateway
release `edge-ingress` of another name and no Service of its own, whose pods the same Service
selects), the `default` tag made by istioctl, and a hand-written ClusterIP Service `istio-ingressgateway` that selects the gateway by
`version`. install.yml adopts it all (the Service keeps its type and
ports and is switched to meshfleet's selector before the gateway release changes its pods'
labels; the tags the istiod release rendered are kept through its upgrade), then upgrade.yml moves the fleet to 1.31.0 and removes 1-30-3. A watcher checks the
invariants at every poll, the hand-made Service included. The tests build on each other in file
order."""

import json

import pytest
from kubernetes import client

from localfleet.waits import wait_until
from tests.playbooks import istioctl_judge
from tests.playbooks.canary_setup import (
    CLUSTER,
    GATEWAY,
    GATEWAY_NS,
    INSTALL_OLD,
    NEW,
    OLD,
    chart,
    helm,
    releases,
    tear_down,
)
from tests.playbooks.mesh_watch import MeshWatch
from tests.playbooks.takeover import UPGRADE as TAKEOVER_UPGRADE
from tests.playbooks.takeover import create_app, injected

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

HAND_PORTS = [{"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
              {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]
# The new revision's gateway takes over what both releases serve: the cut-over asks for as many
# Ready pods as the Service selects now (meshfleet's two and edge-ingress's one).
UPGRADE = dict(TAKEOVER_UPGRADE, meshfleet_gateways=[
    dict(INSTALL_OLD["meshfleet_gateways"][0], replicas=3)])
EDGE = "edge-ingress"  # a gateway release under a name meshfleet would not give it
APPS = {"shop": {"istio.io/rev": "prod-stable"}, "pinned": {"istio.io/rev": OLD},
        "legacy": {"istio-injection": "enabled"}}


def hand_made_service(api):
    return client.CoreV1Api(api).read_namespaced_service(GATEWAY, GATEWAY_NS)


def test_the_layout_is_made_by_hand(fleet, api):
    helm(fleet, "install", "istio-base", chart("base", "1.30.3"), "-n", "istio-system",
         "--create-namespace", "--set", f"defaultRevision={OLD}")
    helm(fleet, "install", f"istiod-{OLD}", chart("istiod", "1.30.3"), "-n", "istio-system",
         "--set", f"revision={OLD}", "--set", "revisionTags={prod-stable}", "--wait",
         "--timeout", "5m")
    istioctl_judge.istioctl(fleet, CLUSTER, "tag", "set", "default", "--revision", OLD,
                            "--skip-confirmation")
    helm(fleet, "install", f"{GATEWAY}-{OLD}", chart("gateway", "1.30.3"), "-n", GATEWAY_NS,
         "--create-namespace", "--set", f"revision={OLD}", "--set", "labels.istio=ingressgateway",
         "--set", f"labels.version={OLD}", "--set", "service.type=ClusterIP", "--wait",
         "--timeout", "5m")
    helm(fleet, "install", EDGE, chart("gateway", "1.30.3"), "-n", GATEWAY_NS,
         "--set", f"revision={OLD}", "--set", "labels.istio=ingressgateway",
         "--set", f"labels.version={OLD}", "--set", "service.type=None", "--wait",
         "--timeout", "5m")
    client.CoreV1Api(api).create_namespaced_service(GATEWAY_NS, {
        "metadata": {"name": GATEWAY},
        "spec": {"type": "ClusterIP", "ports": HAND_PORTS,
                 "selector": {"istio": "ingressgateway", "version": OLD}}})
    for name, labels in APPS.items():
        create_app(api, name, labels)
    for name in APPS:
        wait_until(lambda: injected(api, name) == [OLD, OLD], f"{name}/web injected by {OLD}")
    assert istioctl_judge.tags(fleet, CLUSTER) == {"default": OLD, "prod-stable": OLD}


def test_install_adopts_it_without_an_outage(run_playbook, fleet, api):
    with MeshWatch(fleet, OLD, services=[(GATEWAY_NS, GATEWAY)]) as watch:
        run = run_playbook("install", extra_vars=INSTALL_OLD, limit=CLUSTER)
    assert run.rc == 0, run.output[-5000:]
    assert watch.violations == []
    assert watch.injection_probes > 0, "the watcher never probed injection"
    assert (f"Service {GATEWAY_NS}/{GATEWAY} (selector {{'istio': 'ingressgateway', 'version': "
            f"'{OLD}'}}, type ClusterIP) is not meshfleet's") in run.output
    service = hand_made_service(api)
    assert service.spec.selector == {"istio": "ingressgateway", "istio.io/rev": OLD}
    assert service.spec.type == "ClusterIP"
    assert [(p.name, p.port, p.target_port) for p in service.spec.ports] == [
        ("http2", 80, 8080), ("https", 443, 8443)]
    assert service.metadata.labels["meshfleet.io/stable-gateway"] == GATEWAY
    rendered = client.AdmissionregistrationV1Api(api).read_mutating_webhook_configuration(
        "istio-revision-tag-prod-stable")
    assert rendered.metadata.annotations["helm.sh/resource-policy"] == "keep"
    assert releases(fleet) == [f"{GATEWAY_NS}/{EDGE}", f"{GATEWAY_NS}/{GATEWAY}-{OLD}",
                               "istio-system/istio-base", f"istio-system/istiod-{OLD}"]
    assert istioctl_judge.verdict(fleet, CLUSTER, api, {"default": OLD, "prod-stable": OLD},
                                  OLD) == []


def test_status_names_the_gateway_meshfleet_did_not_install(run_playbook, tmp_path):
    run = run_playbook("status", extra_vars={"meshfleet_report_dir": str(tmp_path)}, limit=CLUSTER)
    assert run.rc == 0, run.output[-3000:]
    mesh = json.loads((tmp_path / "fleet.json").read_text())[CLUSTER]
    assert {(g["name"], g["meshfleet"]) for g in mesh["gateways"]} == {
        (EDGE, False), (f"{GATEWAY}-{OLD}", True)}
    assert mesh["problems"] == [
        f"gateway Deployment {GATEWAY_NS}/{EDGE} (revision {OLD}) is not meshfleet's (its "
        "gateways are Helm releases <gateway>-<revision>): upgrade.yml removes its release "
        f"{GATEWAY_NS}/{EDGE} with revision {OLD} once nothing selects its pods"]


def test_a_second_install_changes_nothing(run_playbook, write_counter):
    counter = write_counter()
    run = run_playbook("install", extra_vars=INSTALL_OLD, limit=CLUSTER)
    assert run.rc == 0 and run.changed()[CLUSTER] == 0, run.recap()
    assert counter.writes()[CLUSTER] == []


def test_the_upgrade_moves_everything_and_removes_the_old_revision(run_playbook, fleet, api):
    with MeshWatch(fleet, OLD) as watch:
        run = run_playbook("upgrade", extra_vars=UPGRADE, limit=CLUSTER)
    assert run.rc == 0, run.output[-5000:]
    assert watch.violations == []
    assert hand_made_service(api).spec.selector == {"istio": "ingressgateway", "istio.io/rev": NEW}
    assert hand_made_service(api).spec.type == "ClusterIP"
    for name in APPS:
        assert injected(api, name) == [NEW, NEW], name
    installed = {d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(
        "istio-system").items}
    assert installed == {f"istiod-{NEW}"}
    assert releases(fleet) == [f"{GATEWAY_NS}/{GATEWAY}-{NEW}", "istio-system/istio-base",
                               f"istio-system/istiod-{NEW}"]
    assert istioctl_judge.verdict(fleet, CLUSTER, api, {"default": NEW, "prod-stable": NEW},
                                  NEW) == []


def test_cleanup(run_playbook, api):
    for name in APPS:
        client.CoreV1Api(api).delete_namespace(name)
    tear_down(run_playbook, api, extra_namespaces=tuple(APPS))
