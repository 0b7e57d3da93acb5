from ansible_collections.meshfleet.istio.plugins.module_utils.converge import contains, strip_noise

from tests.unit.plugins.fakes import FakeCluster


def test_live_objects_may_carry_more_than_wanted():
    live = {"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"ports": [
        {"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 31000}]}}
    assert contains(live, {"metadata": {"labels": {"x": "1"}},
                           "spec": {"ports": [{"port": 80, "targetPort": 8080}]}})


def test_a_missing_or_different_field_is_a_difference():
    live = {"spec": {"selector": {"istio": "ingressgateway", "istio.io/rev": "1-30-dev"}}}
    assert not contains(live, {"spec": {"selector": {"istio.io/rev": "1-31-0"}}})
    assert not contains(live, {"spec": {"type": "LoadBalancer"}})


def test_lists_must_match_element_by_element():
    assert not contains({"hosts": ["a", "b"]}, {"hosts": ["a"]})
    assert not contains({"hosts": ["b", "a"]}, {"hosts": ["a", "b"]})


def test_diffs_leave_out_server_bookkeeping():
    obj = {"metadata": {"name": "a", "resourceVersion": "9", "managedFields": [], "uid": "u"},
           "status": {"x": 1}, "spec": {}}
    assert strip_noise(obj) == {"metadata": {"name": "a"}, "spec": {}}


def test_only_istio_crds_not_owned_by_the_release_are_adopted():
    from ansible_collections.meshfleet.istio.plugins.filter.k8s_objects import crd_adoptions
    from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import (
        MeshSnapshot,
    )

    def crd(name, release=None):
        annotations = {"meta.helm.sh/release-name": release,
                       "meta.helm.sh/release-namespace": "istio-system"} if release else {}
        return {"metadata": {"name": name, "annotations": annotations}}

    raw = {"istio_namespace": "istio-system", "deployments": [], "mutating_webhooks": [],
           "validating_webhooks": [], "services": [],
           "crds": [crd("a.networking.istio.io"), crd("b.security.istio.io", release="base-old"),
                    crd("c.telemetry.istio.io", release="istio-base"),
                    crd("widgets.example.com")]}
    adopted = crd_adoptions(MeshSnapshot(raw).istio_crds(), "istio-base", "istio-system")
    assert [a["metadata"]["name"] for a in adopted] == ["a.networking.istio.io", "b.security.istio.io"]
    assert adopted[0]["metadata"]["annotations"] == {
        "meta.helm.sh/release-name": "istio-base", "meta.helm.sh/release-namespace": "istio-system"}


def namespace(name, labels=None):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}}}


def test_existing_only_never_creates_a_missing_object():
    from ansible_collections.meshfleet.istio.plugins.module_utils.converge import converge

    cluster = FakeCluster()
    assert converge(cluster, namespace("shop"), ["istio.io/rev"], existing_only=True)[0] is False
    assert cluster.writes == [] and cluster.objects == {}
    assert converge(FakeCluster(), namespace("shop"))[0] is True  # the default creates


def test_existing_only_takes_labels_off_and_leaves_a_vanished_object_gone():
    from ansible_collections.meshfleet.istio.plugins.module_utils.converge import converge

    live = namespace("shop", {"istio.io/rev": "prod-stable"})
    cluster = FakeCluster([live])
    changed = converge(cluster, namespace("shop"), ["istio.io/rev"], existing_only=True)[0]
    assert changed and cluster.written() == [("patch", "Namespace", None, "shop")]

    gone = FakeCluster([live], vanish={("Namespace", None, "shop")})
    changed, before, after = converge(gone, namespace("shop"), ["istio.io/rev"], existing_only=True)
    assert (changed, after, gone.objects) == (False, {}, {})
    assert before["metadata"]["labels"] == {"istio.io/rev": "prod-stable"}


def test_helm_keep_sets_only_the_resource_policy_annotation():
    from ansible_collections.meshfleet.istio.plugins.filter.k8s_objects import helm_keep
    assert helm_keep([{"apiVersion": "v1", "kind": "Service", "name": "istiod-revision-tag-a",
                       "namespace": "istio-system", "tag": "a", "release": "istiod-x",
                       "kept": False}]) == [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "istiod-revision-tag-a", "namespace": "istio-system",
                      "annotations": {"helm.sh/resource-policy": "keep"}}}]


def test_metadata_only_the_apiserver_sets_is_not_wanted():
    from ansible_collections.meshfleet.istio.plugins.module_utils.converge import converge

    live = dict(namespace("shop"), metadata={"name": "shop", "creationTimestamp": "2026-12-04T19:19:10Z"})
    rendered = dict(namespace("shop"), metadata={"name": "shop", "creationTimestamp": None})
    cluster = FakeCluster([live])
    assert converge(cluster, rendered)[0] is False and cluster.writes == []
