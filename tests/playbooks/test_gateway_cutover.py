"""meshfleet.istio.gateway_cutover on a real cluster with two revisions: refused while the new
revision's gateway is NotReady, a dry run that writes nothing, the cut-over (the Service's
endpoints then hold only new-revision pods), a second run that writes nothing, and the way back.
The tests run in file order and build on each other."""

import pytest
from kubernetes import client

from localfleet.waits import wait_until
from tests.playbooks.canary_setup import CLUSTER, GATEWAY, GATEWAY_NS, NEW, OLD, gateway_pods
from tests.playbooks.canary_setup import install_two_revisions, release_hold, run_module, tear_down

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]


@pytest.fixture(scope="module")
def scene(run_playbook, fleet, api, tmp_path_factory):
    """Both revisions, the stable Service on 1-30-3, the 1-31-0 gateway held NotReady."""
    install_two_revisions(run_playbook, fleet, api, tmp_path_factory.mktemp("charts"),
                          hold_new_gateway=True)
    yield
    tear_down(run_playbook, api)


@pytest.fixture
def cutover(fleet, tmp_path, scene):
    def run(revision, check=False, diff=False, **options):
        return run_module(fleet, tmp_path, "gateway_cutover",
                          dict(name=GATEWAY, namespace=GATEWAY_NS, revision=revision, **options),
                          check=check, diff=diff)
    return run


def stable_service(api):
    return client.CoreV1Api(api).read_namespaced_service(GATEWAY, GATEWAY_NS)


def endpoint_pods(api):
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        GATEWAY_NS, label_selector=f"kubernetes.io/service-name={GATEWAY}").items
    return sorted(e.target_ref.name for s in slices for e in s.endpoints or [])


def pod_names(pods):
    return sorted(p.metadata.name for p in pods)


def test_cut_over_is_refused_while_the_new_gateway_is_not_ready(cutover, api, write_counter):
    assert len(gateway_pods(api, NEW, ready=False)) == 2
    counter = write_counter()
    run = cutover(NEW)
    assert run.failed and run.rc != 0
    assert (f"Service {GATEWAY_NS}/{GATEWAY} not cut over to revision {NEW}: 0 Ready gateway "
            f"pod(s) match istio=ingressgateway,istio.io/rev={NEW}, 2 needed") in run.msg
    assert stable_service(api).spec.selector == {"istio": "ingressgateway", "istio.io/rev": OLD}
    assert counter.writes()[CLUSTER] == []


def test_check_mode_predicts_the_cut_over_and_writes_nothing(cutover, api, write_counter):
    release_hold(api)
    counter = write_counter()
    run = cutover(NEW, check=True, diff=True)
    assert run.rc == 0 and run.changed, run.output[-3000:]
    assert (run.result["previous_revision"], run.result["revision"], run.result["ready_pods"]) == (OLD, NEW, 2)
    diff = run.result["diff"][0]
    assert diff["before"]["spec"]["selector"]["istio.io/rev"] == OLD
    assert diff["after"]["spec"]["selector"]["istio.io/rev"] == NEW
    assert stable_service(api).spec.selector["istio.io/rev"] == OLD
    assert counter.writes()[CLUSTER] == []


def test_cut_over_moves_the_endpoints_to_the_new_revision_only(cutover, api):
    before = stable_service(api)
    run = cutover(NEW)
    assert run.rc == 0 and run.changed, run.output[-3000:]
    assert run.result["objects"] == [f"{GATEWAY_NS}/Service/{GATEWAY}"]
    after = stable_service(api)
    assert after.spec.selector == {"istio": "ingressgateway", "istio.io/rev": NEW}
    assert (after.spec.type, after.spec.ports, after.metadata.labels) == \
        (before.spec.type, before.spec.ports, before.metadata.labels)
    new_pods = pod_names(gateway_pods(api, NEW, ready=True))
    wait_until(lambda: endpoint_pods(api) == new_pods, f"endpoints {new_pods}")
    assert not set(endpoint_pods(api)) & set(pod_names(gateway_pods(api, OLD)))


def test_a_second_run_changes_nothing_and_writes_nothing(cutover, write_counter):
    counter = write_counter()
    run = cutover(NEW)
    assert run.rc == 0 and not run.changed, run.output[-3000:]
    assert run.result["previous_revision"] == NEW
    assert counter.writes()[CLUSTER] == []


def test_min_ready_above_what_is_ready_is_refused(cutover, api, write_counter):
    counter = write_counter()
    run = cutover(OLD, min_ready=3)
    assert run.failed
    assert f"to revision {OLD}: 2 Ready gateway pod(s) match istio=ingressgateway,istio.io/rev={OLD}, 3 needed" in run.msg
    assert stable_service(api).spec.selector["istio.io/rev"] == NEW
    assert counter.writes()[CLUSTER] == []


def test_cutting_back_to_the_old_revision_is_the_rollback(cutover, api):
    run = cutover(OLD)
    assert run.rc == 0 and run.changed, run.output[-3000:]
    assert (run.result["previous_revision"], run.result["revision"]) == (NEW, OLD)
    old_pods = pod_names(gateway_pods(api, OLD, ready=True))
    assert len(old_pods) == 2
    wait_until(lambda: endpoint_pods(api) == old_pods, f"endpoints {old_pods}")
