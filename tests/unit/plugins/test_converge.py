from ansible_collections.meshfleet.istio.plugins.module_utils.converge import contains, strip_noise


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

    def crd(name, group, release=None):
        annotations = {"meta.helm.sh/release-name": release,
                       "meta.helm.sh/release-namespace": "istio-system"} if release else {}
        return {"metadata": {"name": name, "annotations": annotations}, "spec": {"group": group}}

    crds = [crd("a.networking.istio.io", "networking.istio.io"),
            crd("b.security.istio.io", "security.istio.io", release="base-old"),
            crd("c.telemetry.istio.io", "telemetry.istio.io", release="istio-base"),
            crd("widgets.example.com", "example.com")]
    adopted = crd_adoptions(crds, "istio-base", "istio-system")
    assert [a["metadata"]["name"] for a in adopted] == ["a.networking.istio.io", "b.security.istio.io"]
    assert adopted[0]["metadata"]["annotations"] == {
        "meta.helm.sh/release-name": "istio-base", "meta.helm.sh/release-namespace": "istio-system"}
