"""The PortForward objects the fleet's kubelet keeps for istiod pods, and the stand-in's debug
endpoint (no cluster: pods are given, the API records what is sent)."""

import json
import urllib.error
import urllib.request

import pytest

from localfleet import pod_port_forwards


def pod(name="istiod-1-31-0-abc", uid="u1", revision="1-31-0", phase="Running", deleting=False):
    meta = {"name": name, "namespace": "istio-system", "uid": uid,
            "labels": {"app": "istiod", "istio.io/rev": revision}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-08T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase}}


class RecordingApi:
    def __init__(self, fail=False):
        self.sent, self.fail = [], fail

    def request(self, method, path, body=None, content_type="application/json"):
        if self.fail:
            raise OSError("connection refused")
        self.sent.append((method, path.split("?")[0], body, content_type))
        return {}


def test_a_port_forward_sends_each_istiod_port_to_the_same_port_of_the_target():
    body = pod_port_forwards.port_forward(pod(), "127.10.1.1")
    assert body["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "istiod-1-31-0-abc", "uid": "u1"}]
    forwards = {f["ports"][0]: f["target"] for f in body["spec"]["forwards"]}
    assert forwards[15014] == {"address": "127.10.1.1", "port": 15014}
    assert set(forwards) == set(pod_port_forwards.ISTIOD_PORTS)


def test_live_pods_get_one_write_each_until_their_target_changes():
    api = RecordingApi()
    forwards = pod_port_forwards.PortForwards("cluster1", api)
    pods = [pod(), pod("istiod-1-30-3-def", "u2", "1-30-3"),
            pod("gone", "u3", deleting=True), pod("done", "u4", phase="Succeeded")]
    targets = {"1-31-0": "127.10.1.1", "1-30-3": None}  # 1-30-3's istiod still starting
    target_of = lambda p: targets[p["metadata"]["labels"]["istio.io/rev"]]  # noqa: E731
    forwards.reconcile(pods, target_of)
    assert [(m, p) for m, p, _, _ in api.sent] == [
        ("PATCH", "/apis/kwok.x-k8s.io/v1alpha1/namespaces/istio-system/portforwards/"
                  "istiod-1-31-0-abc")]
    assert api.sent[0][3] == "application/apply-patch+yaml"
    forwards.reconcile(pods, target_of)
    assert len(api.sent) == 1
    targets["1-30-3"] = "127.10.2.1"
    targets["1-31-0"] = "127.10.3.1"  # replaced by a new process
    forwards.reconcile(pods, target_of)
    assert sorted(p.rsplit("/", 1)[1] for _, p, _, _ in api.sent[1:]) == [
        "istiod-1-30-3-def", "istiod-1-31-0-abc"]


def test_a_pod_recreated_under_the_same_name_gets_its_own_port_forward():
    api = RecordingApi()
    forwards = pod_port_forwards.PortForwards("cluster1", api)
    forwards.reconcile([pod(uid="u1")], lambda p: "127.10.1.1")
    forwards.reconcile([pod(uid="u9")], lambda p: "127.10.1.1")
    assert [b["metadata"]["ownerReferences"][0]["uid"] for _, _, b, _ in api.sent] == ["u1", "u9"]


def test_a_failed_write_is_retried_on_the_next_pass():
    api = RecordingApi(fail=True)
    forwards = pod_port_forwards.PortForwards("cluster1", api)
    forwards.reconcile([pod()], lambda p: "127.10.1.1")
    api.fail = False
    forwards.reconcile([pod()], lambda p: "127.10.1.1")
    assert len(api.sent) == 1


@pytest.fixture()
def debug_endpoint():
    server = pod_port_forwards.DebugEndpoint("127.0.0.1", port=0)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_debug_endpoint_answers_as_an_istiod_with_no_proxies(debug_endpoint):
    with urllib.request.urlopen(debug_endpoint + "/debug/syncz") as reply:
        assert json.loads(reply.read()) == []
    with urllib.request.urlopen(debug_endpoint + "/debug/connections?x=1") as reply:
        assert json.loads(reply.read())["totalClients"] == 0
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(debug_endpoint + "/debug/configz")
    assert missing.value.code == 404
