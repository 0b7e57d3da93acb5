"""The operator engine's IstioOperators and the wait for their operators (plain objects, a fake
cluster and clock; the real 1.22.8 operator reconciles them in tests/playbooks/test_operator.py)."""

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import istio_operator_spec
from ansible_collections.meshfleet.istio.plugins.module_utils.istio_operator_status import (
    IstioOperatorTimeout,
    reconciled,
    standing,
    wait_for_installed,
)

from tests.unit.plugins.fakes import FakeClock

CHART_VALUES = {
    "revision": "1-22-8", "replicaCount": 2, "autoscaleEnabled": True, "autoscaleMin": 2,
    "autoscaleMax": 5, "rollingMaxSurge": "100%", "rollingMaxUnavailable": "25%",
    "cpu": {"targetAverageUtilization": 60}, "resources": {"requests": {"cpu": "200m"}},
    "meshConfig": {"rootNamespace": "istio-config", "accessLogEncoding": "JSON"},
    "global": {"istioNamespace": "istio-system", "meshID": "mesh1",
               "multiCluster": {"clusterName": "cluster1"}, "hub": "registry.example/istio"},
}


def test_the_control_plane_is_the_guides_minimal_profile_with_every_gateway_disabled():
    iop = istio_operator_spec.control_plane("1-22-8", "1.22.8", "istio-system", CHART_VALUES)
    assert iop["metadata"] == {"name": "istiod-1-22-8", "namespace": "istio-system",
                               "labels": {"app.kubernetes.io/managed-by": "meshfleet",
                                          "istio.io/rev": "1-22-8"}}
    spec = iop["spec"]
    assert (spec["profile"], spec["revision"], spec["tag"], spec["hub"]) == (
        "minimal", "1-22-8", "1.22.8", "registry.example/istio")
    assert spec["meshConfig"] == CHART_VALUES["meshConfig"]
    components = spec["components"]
    assert components["base"] == {"enabled": False} and components["cni"] == {"enabled": False}
    assert components["ingressGateways"] == [{"name": "istio-ingressgateway", "enabled": False}]
    assert components["egressGateways"] == [{"name": "istio-egressgateway", "enabled": False}]
    pilot = spec["values"]["pilot"]
    assert pilot["replicaCount"] == 2 and pilot["autoscaleMax"] == 5
    assert pilot["cpu"] == {"targetAverageUtilization": 60} and "meshConfig" not in pilot
    assert "hub" not in spec["values"]["global"] and "defaultRevision" not in spec["values"]
    assert "hub" in CHART_VALUES["global"]  # the caller's values are left alone


def test_only_the_first_revision_carries_the_base_component_and_never_the_default_validator():
    iop = istio_operator_spec.control_plane("1-22-8", "1.22.8", "istio-system", CHART_VALUES,
                                            hub="docker.io/istio", with_base=True)
    assert iop["spec"]["components"]["base"] == {"enabled": True}
    assert iop["spec"]["values"]["defaultRevision"] == ""
    assert iop["spec"]["hub"] == "docker.io/istio"
    assert istio_operator_spec.is_meshfleets(iop)
    assert not istio_operator_spec.is_meshfleets({"metadata": {"name": "by-hand"}})


def iop(status=None, spec_time="2026-12-08T10:00:00Z", status_time="2026-12-08T10:00:05Z",
        components=None):
    fields = [{"manager": "meshfleet", "operation": "Apply", "time": spec_time}]
    if status_time:
        fields.append({"manager": "operator", "operation": "Update", "subresource": "status",
                       "time": status_time})
    found = {"metadata": {"name": "istiod-1-22-8", "namespace": "istio-system",
                          "managedFields": fields}}
    if status:
        found["status"] = {"status": status, "componentStatus": components or {}}
    return found


def deployment(ready=2, version="1.22.8", owner="istiod-1-22-8"):
    return {"metadata": {"name": "istiod-1-22-8", "namespace": "istio-system",
                         "labels": {"install.operator.istio.io/owning-resource": owner,
                                    "operator.istio.io/version": version}},
            "status": {"readyReplicas": ready}}


def test_a_status_is_the_operators_answer_only_when_written_after_the_spec():
    assert reconciled(iop("HEALTHY"))
    assert reconciled(iop("HEALTHY", status_time="2026-12-08T10:00:00Z"))  # same second
    assert not reconciled(iop("HEALTHY", spec_time="2026-12-08T10:01:00Z"))
    assert not reconciled(iop(status_time=None))


def test_installed_needs_healthy_for_the_current_spec_and_ready_deployments_of_the_version():
    assert standing("istiod-1-22-8", iop("HEALTHY"), [deployment()], "1.22.8")["installed"]
    not_yet = [
        (iop("HEALTHY"), [deployment(ready=0)]),
        (iop("HEALTHY"), [deployment(version="1.22.7")]),
        (iop("HEALTHY"), [deployment(owner="other")]),
        (iop("RECONCILING"), [deployment()]),
        (iop("HEALTHY", spec_time="2026-12-08T10:01:00Z"), [deployment()]),
        (None, [deployment()]),
    ]
    for found, deployments in not_yet:
        assert not standing("istiod-1-22-8", found, deployments, "1.22.8")["installed"]
    assert standing("istiod-1-22-8", None, [], "1.22.8")["status"] == "absent"


class OperatorCluster:
    """The IstioOperator and its Deployment as reads return them, one answer per poll."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.current = None

    def get(self, api_version, kind, name, namespace=None):
        self.current = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return self.current[0]

    def list(self, api_version, kind, namespace=None, label_selector=None, metadata_only=False):
        assert label_selector == "install.operator.istio.io/owning-resource=istiod-1-22-8"
        return self.current[1]


WANTED = [{"name": "istiod-1-22-8", "namespace": "istio-system", "version": "1.22.8"}]


def test_the_wait_ends_once_the_operator_has_installed_the_revision():
    cluster = OperatorCluster([(None, []), (iop(""), []), (iop("RECONCILING"), []),
                               (iop("HEALTHY"), [deployment()])])
    [entry] = wait_for_installed(cluster, WANTED, 60, 2, clock=FakeClock())
    assert entry["installed"] and entry["deployments"][0]["ready"] == 2


def test_a_timeout_names_what_the_operator_said():
    errors = {"Pilot": {"status": "ERROR", "error": "image pull"}}
    cluster = OperatorCluster([(iop("ERROR", components=errors), [])])
    with pytest.raises(IstioOperatorTimeout) as timeout:
        wait_for_installed(cluster, WANTED, 10, 2, clock=FakeClock())
    message = str(timeout.value)
    assert "istiod-1-22-8 is ERROR" in message and "Pilot: ERROR (image pull)" in message
    assert "no Deployment made yet" in message


def test_without_an_operator_the_timeout_names_the_operator_role():
    cluster = OperatorCluster([(iop(status_time=None), [])])
    with pytest.raises(IstioOperatorTimeout) as timeout:
        wait_for_installed(cluster, WANTED, 10, 2, clock=FakeClock())
    assert "role meshfleet.istio.operator" in str(timeout.value)


def test_check_mode_reads_once_and_does_not_wait():
    cluster = OperatorCluster([(None, [])])
    [entry] = wait_for_installed(cluster, WANTED, 10, 2, check_mode=True, clock=FakeClock())
    assert entry["status"] == "absent" and not entry["installed"]


def test_a_gateway_is_one_enabled_component_with_its_own_clusterip_service_and_hpa():
    ports = [{"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    labels = {"istio": "ingressgateway", "istio.io/rev": "1-22-8"}
    iop = istio_operator_spec.gateway(
        "istio-ingressgateway", "ingress", "1-22-8", "1.22.8", "istio-gateways", "istio-system",
        labels, ports, {"min": 2, "max": 5, "cpu_percent": 60}, {"requests": {"cpu": "100m"}},
        global_values={"network": "net1"}, hub="docker.io/istio")
    assert (iop["metadata"]["name"], iop["metadata"]["namespace"]) == (
        "istio-ingressgateway-1-22-8", "istio-gateways")
    spec = iop["spec"]
    assert (spec["profile"], spec["revision"], spec["tag"], spec["hub"]) == (
        "empty", "1-22-8", "1.22.8", "docker.io/istio")
    [component] = spec["components"]["ingressGateways"]
    assert component["name"] == "istio-ingressgateway-1-22-8" and component["enabled"]
    assert component["namespace"] == "istio-gateways" and component["label"] == labels
    assert component["k8s"]["service"] == {"type": "ClusterIP", "ports": ports}
    hpa = component["k8s"]["hpaSpec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert hpa["scaleTargetRef"]["name"] == "istio-ingressgateway-1-22-8"
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert spec["values"]["global"] == {"network": "net1", "istioNamespace": "istio-system"}
    assert spec["values"]["gateways"] == {"istio-ingressgateway": {"injectionTemplate": "gateway"}}


def test_an_egress_gateway_is_an_egress_component_and_east_west_gets_its_network_view():
    args = ("1-22-8", "1.22.8", "istio-egress", "istio-system", {}, [],
            {"min": 1, "max": 2, "cpu_percent": 80}, {})
    egress = istio_operator_spec.gateway("istio-egressgateway", "egress", *args)
    assert list(egress["spec"]["components"]) == ["egressGateways"]
    assert "istio-egressgateway" in egress["spec"]["values"]["gateways"]
    east = istio_operator_spec.gateway("istio-eastwestgateway", "eastwest", *args,
                                       env={"ISTIO_META_REQUESTED_NETWORK_VIEW": "net1"})
    [component] = east["spec"]["components"]["ingressGateways"]
    assert component["k8s"]["env"] == [{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW",
                                        "value": "net1"}]
    assert "hub" not in east["spec"]
