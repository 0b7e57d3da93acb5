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
