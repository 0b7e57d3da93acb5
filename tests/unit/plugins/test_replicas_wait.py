"""Which gateway Deployments a run waits for, and the wait itself (a fake cluster and clock;
the gateways role waits on real clusters in tests/playbooks/test_install.py)."""

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils.replicas_wait import (
    ReplicasTimeout,
    gateways_to_await,
    wait_for_replicas,
)

from tests.unit.plugins.fakes import FakeClock

INGRESS = {"name": "istio-ingressgateway-1-31-0", "namespace": "istio-gateways"}
EGRESS = {"name": "istio-egressgateway-1-31-0", "namespace": "istio-gateways"}


def result(release, changed, replicas=None):
    item = {"name": release["name"].rsplit("-", 3)[0]}
    if replicas is not None:
        item["replicas"] = replicas
    return {"changed": changed, "release": dict(release, status="deployed"), "item": item}


def test_a_converged_cluster_waits_for_nothing():
    mesh = [dict(INGRESS, ready_replicas=2), dict(EGRESS, ready_replicas=2)]
    assert gateways_to_await([result(INGRESS, False), result(EGRESS, False)], mesh, 2) == []


def test_a_changed_release_and_one_short_of_its_minimum_are_awaited():
    mesh = [dict(INGRESS, ready_replicas=2), dict(EGRESS, ready_replicas=2)]
    assert gateways_to_await([result(INGRESS, True), result(EGRESS, False, replicas=3)],
                             mesh, 2) == [dict(INGRESS, minimum=2), dict(EGRESS, minimum=3)]


def test_a_deployment_the_mesh_read_did_not_find_is_awaited():
    assert gateways_to_await([result(INGRESS, False)], [], 2) == [dict(INGRESS, minimum=2)]


class ScalingCluster:
    """A Deployment whose Ready replicas grow by one per read."""

    def __init__(self):
        self.reads = 0

    def get(self, api_version, kind, name, namespace):
        self.reads += 1
        return {"status": {"readyReplicas": self.reads}}


def test_the_wait_polls_until_the_minimum_is_ready():
    cluster = ScalingCluster()
    readiness = wait_for_replicas(cluster, [dict(INGRESS, minimum=3)], 60, 2, clock=FakeClock())
    assert readiness == [dict(INGRESS, minimum=3, ready=3)]


def test_check_mode_reads_once_and_a_timeout_names_what_is_short():
    assert wait_for_replicas(ScalingCluster(), [dict(INGRESS, minimum=3)], 60, 2,
                             check_mode=True)[0]["ready"] == 1
    with pytest.raises(ReplicasTimeout, match=r"istio-gateways/istio-ingressgateway-1-31-0 "
                                              r"\(3 of 9 Ready\)"):
        wait_for_replicas(ScalingCluster(), [dict(INGRESS, minimum=9)], 4, 2, clock=FakeClock())
