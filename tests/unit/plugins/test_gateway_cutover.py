"""The gateway cut-over on plain objects: the readiness gate, the one-key patch, idempotence."""

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils.converge import Changes
from ansible_collections.meshfleet.istio.plugins.module_utils.gateway_services import (
    CutoverError,
    cut_over,
    needed_ready,
    retargeted,
)

from tests.unit.plugins.fakes import FakeCluster

NS = "istio-gateways"


def gateway_pod(name, revision, ready=True, terminating=False, kind="ingressgateway"):
    meta = {"name": name, "namespace": NS, "labels": {"istio": kind, "istio.io/rev": revision}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"kind": "Pod", "metadata": meta, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def stable_service(revision="1-30-dev", selector=None):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "istio-ingressgateway", "namespace": NS, "resourceVersion": "7",
                         "labels": {"meshfleet.io/stable-gateway": "istio-ingressgateway"}},
            "spec": {"type": "LoadBalancer", "ports": [{"name": "http2", "port": 80}],
                     "selector": selector if selector is not None else
                     {"istio": "ingressgateway", "istio.io/rev": revision}}}


def service_of(cluster):
    return cluster.objects[("Service", NS, "istio-ingressgateway")]


def run(cluster, revision="1-31-0", min_ready=None):
    changes = Changes()
    result = cut_over(cluster, changes, "istio-ingressgateway", NS, revision, min_ready)
    return result, changes


def test_the_selector_keeps_every_key_but_the_revision():
    assert retargeted({"istio": "ingressgateway", "istio.io/rev": "1-30-dev", "app": "x"},
                      "1-31-0") == {"istio": "ingressgateway", "istio.io/rev": "1-31-0", "app": "x"}


def test_the_default_need_is_what_serves_now_and_at_least_one():
    assert needed_ready(None, 3) == 3
    assert needed_ready(None, 0) == 1
    assert needed_ready(1, 3) == 1


def test_cut_over_patches_only_the_revision_key_and_reports_the_switch():
    cluster = FakeCluster([
        stable_service(), gateway_pod("old-1", "1-30-dev"), gateway_pod("old-2", "1-30-dev"),
        gateway_pod("new-1", "1-31-0"), gateway_pod("new-2", "1-31-0")])
    result, changes = run(cluster)
    assert result == {"previous_revision": "1-30-dev", "revision": "1-31-0", "ready_pods": 2}
    assert cluster.writes == [("patch", "Service", NS, "istio-ingressgateway",
                               {"spec": {"selector": {"istio.io/rev": "1-31-0"}}})]
    assert changes.changed_objects == ["istio-gateways/Service/istio-ingressgateway"]
    diff = changes.diffs[0]
    assert diff["before"]["spec"]["selector"]["istio.io/rev"] == "1-30-dev"
    assert diff["after"]["spec"]["selector"] == {"istio": "ingressgateway", "istio.io/rev": "1-31-0"}
    assert "resourceVersion" not in diff["before"]["metadata"]


def test_too_few_ready_new_pods_are_refused_with_the_counts():
    cluster = FakeCluster([
        stable_service(), gateway_pod("old-1", "1-30-dev"), gateway_pod("old-2", "1-30-dev"),
        gateway_pod("new-1", "1-31-0"), gateway_pod("new-2", "1-31-0", ready=False),
        gateway_pod("egress", "1-31-0", kind="egressgateway")])
    with pytest.raises(CutoverError) as error:
        run(cluster)
    message = str(error.value)
    assert "Service istio-gateways/istio-ingressgateway not cut over to revision 1-31-0" in message
    assert "1 Ready gateway pod(s) match istio=ingressgateway,istio.io/rev=1-31-0, 2 needed" in message
    assert cluster.writes == []


def test_no_ready_pod_at_all_is_refused_even_when_nothing_serves_now():
    cluster = FakeCluster([stable_service(), gateway_pod("new-1", "1-31-0", ready=False)])
    with pytest.raises(CutoverError, match="0 Ready gateway pod.*1 needed"):
        run(cluster)
    assert cluster.writes == []


def test_min_ready_replaces_the_default_need():
    pods = [gateway_pod("old-%d" % i, "1-30-dev") for i in range(3)] + [gateway_pod("new", "1-31-0")]
    result = run(FakeCluster([stable_service()] + pods), min_ready=1)[0]
    assert result["ready_pods"] == 1
    with pytest.raises(CutoverError, match="1 Ready gateway pod.*2 needed"):
        run(FakeCluster([stable_service()] + pods), min_ready=2)
    with pytest.raises(CutoverError, match="min_ready must be at least 1"):
        run(FakeCluster([stable_service()] + pods), min_ready=0)


def test_a_service_already_pointing_there_is_left_alone():
    cluster = FakeCluster([stable_service("1-31-0"), gateway_pod("new", "1-31-0", ready=False)])
    result, changes = run(cluster)
    assert result == {"previous_revision": "1-31-0", "revision": "1-31-0", "ready_pods": 0}
    assert not changes.changed and cluster.writes == []


def test_running_again_with_the_old_revision_rolls_back():
    pods = [gateway_pod("old", "1-30-dev"), gateway_pod("new", "1-31-0")]
    cluster = FakeCluster([stable_service()] + pods)
    run(cluster)
    result, changes = run(cluster, revision="1-30-dev")
    assert result["previous_revision"] == "1-31-0" and changes.changed
    assert service_of(cluster)["spec"]["selector"]["istio.io/rev"] == "1-30-dev"


def test_check_mode_predicts_through_the_dry_run_and_keeps_the_service():
    cluster = FakeCluster([stable_service(), gateway_pod("old", "1-30-dev"),
                           gateway_pod("new", "1-31-0")], check_mode=True)
    changes = run(cluster)[1]
    assert changes.changed
    assert service_of(cluster)["spec"]["selector"]["istio.io/rev"] == "1-30-dev"


def test_a_missing_service_or_a_selector_without_a_gateway_label_is_refused():
    with pytest.raises(CutoverError, match="Service istio-gateways/istio-ingressgateway does not "
                                           "exist; create it with the meshfleet.istio.gateways"):
        run(FakeCluster([]))
    with pytest.raises(CutoverError, match="would select every pod of the revision"):
        run(FakeCluster([stable_service(selector={"istio.io/rev": "1-30-dev"})]))
    with pytest.raises(CutoverError, match="would select every pod of the revision"):
        run(FakeCluster([stable_service(selector={})]))
