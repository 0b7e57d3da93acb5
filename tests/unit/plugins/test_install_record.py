import copy

from ansible_collections.meshfleet.istio.plugins.module_utils.install_record import (
    DIFFERENCES_NAMED,
    differences,
    fingerprint,
    needs_write,
    object_ref,
    read_helm_records,
    read_objects,
    record_body,
    record_of,
)

from tests.unit.plugins.fakes import FakeCluster

LAYOUT = ["istio-config", "istio-system", "istio-gateways"]
PEER_AUTHENTICATION = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                       "metadata": {"name": "default", "namespace": "istio-config"},
                       "spec": {"mtls": {"mode": "PERMISSIVE"}}}


def namespace(name, labels=None):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels or {}, **{
                "kubernetes.io/metadata.name": name}), "resourceVersion": "10"},
            "status": {"phase": "Active"}}


def gateway_deployment(replicas=2):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istio-ingressgateway-1-31-0", "namespace": "istio-gateways",
                         "labels": {"istio": "ingressgateway", "istio.io/rev": "1-31-0"},
                         "generation": 3},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"labels": {"istio": "ingressgateway", "istio.io/rev": "1-31-0"},
                             "annotations": {}},
                "spec": {"containers": [{"name": "istio-proxy", "image": "proxyv2:1.31.0"}]}}},
            "status": {"readyReplicas": replicas}}


def stable_service(selector_revision="1-31-0"):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "istio-ingressgateway", "namespace": "istio-gateways",
                         "labels": {"app.kubernetes.io/managed-by": "meshfleet"},
                         "resourceVersion": "7"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.9", "clusterIPs": ["10.0.0.9"],
                     "selector": {"istio": "ingressgateway", "istio.io/rev": selector_revision},
                     "ports": [{"name": "http2", "port": 80}]}}


def tag_webhook(service="istiod-1-31-0"):
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "istio-revision-tag-default",
                         "labels": {"istio.io/rev": "1-31-0", "istio.io/tag": "default"}},
            "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io",
                          "failurePolicy": "Fail",
                          "clientConfig": {"service": {"name": service,
                                                       "namespace": "istio-system"}}}]}


def raw_cluster():
    namespaces = [namespace(name) for name in LAYOUT] + [
        namespace("shop", {"istio.io/rev": "prod-stable"}), namespace("unrelated")]
    return {"namespaces": namespaces,
            "deployments": [gateway_deployment()],
            "services": [stable_service(),
                         {"apiVersion": "v1", "kind": "Service",
                          "metadata": {"name": "web", "namespace": "shop"}, "spec": {}}],
            "mutating_webhooks": [tag_webhook()],
            "validating_webhooks": [],
            "crds": [{"metadata": {"name": "peerauthentications.security.istio.io",
                                   "annotations": {"meta.helm.sh/release-name": "istio-base"}}},
                     {"metadata": {"name": "widgets.example.com"}}]}


HELM = {"istio-system": [("sh.helm.release.v1.istiod-1-31-0.v1", "deployed")]}


def parts_of(raw, helm=None, objects=None):
    objects = {"PeerAuthentication/istio-config/default": PEER_AUTHENTICATION} \
        if objects is None else objects
    return fingerprint(raw, HELM if helm is None else helm, objects, LAYOUT)


def test_the_fingerprint_names_what_install_keeps_and_nothing_else():
    assert sorted(parts_of(raw_cluster())) == [
        "CustomResourceDefinition/peerauthentications.security.istio.io",
        "Deployment/istio-gateways/istio-ingressgateway-1-31-0",
        "HelmReleaseRecords/istio-system",
        "MutatingWebhookConfiguration/istio-revision-tag-default",
        "Namespace/istio-config", "Namespace/istio-gateways", "Namespace/istio-system",
        "Namespace/shop",
        "PeerAuthentication/istio-config/default",
        "Service/istio-gateways/istio-ingressgateway"]


def test_what_the_server_and_istiod_change_by_themselves_leaves_the_fingerprint_alone():
    before = parts_of(raw_cluster())
    raw = raw_cluster()
    raw["namespaces"][0]["metadata"]["resourceVersion"] = "99"
    raw["services"][0]["metadata"]["resourceVersion"] = "98"
    raw["services"][0]["spec"]["clusterIP"] = "10.0.0.10"
    raw["mutating_webhooks"][0]["webhooks"][0]["clientConfig"]["caBundle"] = "LS0t"
    raw["mutating_webhooks"][0]["webhooks"][0]["failurePolicy"] = "Ignore"
    deployment = raw["deployments"][0]
    deployment["spec"]["replicas"] = 5
    deployment["status"] = {"readyReplicas": 3}
    deployment["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2026-12-03T10:00:00Z"}
    raw["namespaces"].append(namespace("new-app"))
    assert parts_of(raw) == before


def test_each_drift_changes_the_hash_of_its_object():
    before = parts_of(raw_cluster())
    raw = raw_cluster()
    raw["services"][0]["spec"]["selector"]["istio.io/rev"] = "0-0-0"
    raw["mutating_webhooks"][0]["webhooks"][0]["clientConfig"]["service"]["name"] = "istiod-0-0-0"
    raw["namespaces"][3]["metadata"]["labels"]["istio.io/rev"] = "canary"
    strict = copy.deepcopy(PEER_AUTHENTICATION)
    strict["spec"]["mtls"]["mode"] = "STRICT"
    helm = {"istio-system": HELM["istio-system"] + [
        ("sh.helm.release.v1.istiod-1-31-0.v2", "deployed")]}
    after = fingerprint(raw, helm, {"PeerAuthentication/istio-config/default": strict}, LAYOUT)
    assert sorted(key for key in after if after[key] != before[key]) == [
        "HelmReleaseRecords/istio-system",
        "MutatingWebhookConfiguration/istio-revision-tag-default",
        "Namespace/shop",
        "PeerAuthentication/istio-config/default",
        "Service/istio-gateways/istio-ingressgateway"]


def test_a_namespace_labelled_for_injection_counts_and_a_deleted_object_is_absent():
    raw = raw_cluster()
    raw["namespaces"].append(namespace("legacy", {"istio-injection": "enabled"}))
    raw["namespaces"] = [ns for ns in raw["namespaces"]
                         if ns["metadata"]["name"] != "istio-gateways"]
    parts = parts_of(raw, objects={"Sidecar/istio-config/default": None})
    assert "Namespace/legacy" in parts
    assert parts["Namespace/istio-gateways"] == "absent"
    assert parts["Sidecar/istio-config/default"] == "absent"


def record_for(parts, inputs="in-1"):
    refs = [object_ref(PEER_AUTHENTICATION)]
    return record_of(record_body(inputs, parts, LAYOUT, refs, "run-1")), refs


def test_a_cluster_as_recorded_with_the_same_inputs_and_a_healthy_mesh_is_converged():
    parts = parts_of(raw_cluster())
    record, refs = record_for(parts)
    assert differences(record, "in-1", parts, []) == []
    assert not needs_write(record, "in-1", parts, LAYOUT, refs)


def test_differences_name_the_inputs_each_object_and_the_health_problems():
    parts = parts_of(raw_cluster())
    record, refs = record_for(parts)
    raw = raw_cluster()
    raw["services"][0]["spec"]["selector"]["istio.io/rev"] = "0-0-0"
    raw["mutating_webhooks"] = []
    now = parts_of(raw)
    assert differences(record, "in-2", now, ["revision 1-31-0 has no Ready istiod"]) == [
        "this run's inputs (inventory, extra vars, meshfleet's own roles and plugins) differ "
        "from those of run run-1",
        "MutatingWebhookConfiguration/istio-revision-tag-default is gone since run run-1",
        "Service/istio-gateways/istio-ingressgateway changed since run run-1",
        "revision 1-31-0 has no Ready istiod"]
    assert needs_write(record, "in-1", now, LAYOUT, refs)
    assert needs_write(record, "in-2", parts, LAYOUT, refs)
    assert needs_write(record, "in-1", parts, LAYOUT + ["shop"], refs)


def test_no_record_or_an_unreadable_one_is_never_converged():
    parts = parts_of(raw_cluster())
    assert differences({}, "in-1", parts, []) == [
        "no record of a converged install (kube-system/meshfleet-install)"]
    assert record_of({"data": {"inputs": "x", "fingerprint": "{not json"}}) == {}
    assert record_of(None) == {}


def test_many_changes_are_counted_after_the_first_few():
    record, dummy = record_for({"Namespace/ns%d" % i: "a" for i in range(DIFFERENCES_NAMED + 3)})
    now = {"Namespace/ns%d" % i: "b" for i in range(DIFFERENCES_NAMED + 3)}
    found = differences(record, "in-1", now, [])
    assert len(found) == DIFFERENCES_NAMED + 1
    assert found[-1] == "3 more object(s) changed since run run-1"


def test_helm_records_and_named_objects_are_read_from_the_cluster():
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "sh.helm.release.v1.istio-base.v1", "namespace": "istio-system",
                           "labels": {"owner": "helm", "status": "deployed", "name": "istio-base"}}}
    other = {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "token", "namespace": "istio-system", "labels": {}}}
    cluster = FakeCluster([secret, other, PEER_AUTHENTICATION])
    assert read_helm_records(cluster, ["istio-system"]) == {
        "istio-system": [("sh.helm.release.v1.istio-base.v1", "deployed")], "kube-system": []}
    sidecar = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
               "metadata": {"name": "default", "namespace": "istio-config"}}
    assert read_objects(cluster, [object_ref(PEER_AUTHENTICATION), object_ref(sidecar)]) == {
        "PeerAuthentication/istio-config/default": PEER_AUTHENTICATION,
        "Sidecar/istio-config/default": None}
