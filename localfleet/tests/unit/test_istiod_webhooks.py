"""What the istiod stand-in answers to admission reviews (pure logic, no cluster)."""

import base64
import json

import jsonpatch
import pytest

from localfleet import istiod_webhooks as webhooks
from localfleet.istiod_standin import serving_names

VALUES = {"global": {"hub": "registry.istio.io/release", "tag": "1.31.0", "variant": "",
                     "istioNamespace": "istio-system",
                     "proxy": {"image": "proxyv2", "resources": {"requests": {"cpu": "100m"}}},
                     "proxy_init": {"image": "proxyv2"}, "imagePullSecrets": []}}


def review(obj, operation="CREATE", namespace="app"):
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": operation, "namespace": namespace,
                        "kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": obj}}


def pod(labels=None, annotations=None, containers=None):
    metadata = {"generateName": "web-5d4f-", "namespace": "app", "labels": labels or {"app": "web"}}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": containers or [{"name": "web", "image": "nginx:1"}]}}


def injected(obj, revision="1-31-0"):
    answer = webhooks.inject(review(obj), revision, VALUES)["response"]
    assert answer["allowed"] is True
    if "patch" not in answer:
        return None
    assert answer["patchType"] == "JSONPatch"
    return jsonpatch.apply_patch(obj, json.loads(base64.b64decode(answer["patch"])))


def test_sidecar_injection_adds_the_revisions_proxy_and_status():
    out = injected(pod())
    assert [c["name"] for c in out["spec"]["containers"]] == ["web", "istio-proxy"]
    assert out["spec"]["containers"][1]["image"] == "registry.istio.io/release/proxyv2:1.31.0"
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["istio-init"]
    annotations = out["metadata"]["annotations"]
    assert annotations["istio.io/rev"] == "1-31-0"
    assert annotations["kubectl.kubernetes.io/default-container"] == "web"
    status = json.loads(annotations["sidecar.istio.io/status"])
    assert list(status) == ["initContainers", "containers", "volumes", "imagePullSecrets",
                            "revision"]
    assert status["containers"] == ["istio-proxy"] and status["revision"] == "1-31-0"
    assert status["imagePullSecrets"] is None
    assert set(status["volumes"]) == {v["name"] for v in out["spec"]["volumes"]}
    assert out["metadata"]["labels"]["service.istio.io/canonical-name"] == "web"
    assert out["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"


def test_gateway_template_replaces_the_auto_image_and_adds_no_init_container():
    gateway = pod(annotations={"inject.istio.io/templates": "gateway"},
                  containers=[{"name": "istio-proxy", "image": "auto",
                               "volumeMounts": [{"name": "istio-envoy",
                                                 "mountPath": "/etc/istio/proxy"}]}])
    out = injected(gateway)
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [
        ("istio-proxy", "registry.istio.io/release/proxyv2:1.31.0")]
    assert "initContainers" not in out["spec"]
    mounts = [m["mountPath"] for m in out["spec"]["containers"][0]["volumeMounts"]]
    assert len(mounts) == len(set(mounts)) == len(webhooks.MOUNTS)
    assert json.loads(out["metadata"]["annotations"]["sidecar.istio.io/status"])[
        "initContainers"] is None
    assert "istio-ca-crl" not in {v["name"] for v in out["spec"]["volumes"]}


def test_only_the_sidecar_template_mounts_the_optional_crl_after_the_ca_certificate():
    out = injected(pod())
    volume = next(v for v in out["spec"]["volumes"] if v["name"] == "istio-ca-crl")
    assert volume["configMap"] == {"name": "istio-ca-crl", "optional": True}
    mounts = [m["mountPath"] for m in out["spec"]["containers"][1]["volumeMounts"]]
    assert mounts[mounts.index("/var/run/secrets/istio") + 1] == "/var/run/secrets/istio/crl"


@pytest.mark.parametrize("opt_out", [{"labels": {"sidecar.istio.io/inject": "false"}},
                                     {"annotations": {"sidecar.istio.io/inject": "false"}}])
def test_opted_out_pods_are_left_alone(opt_out):
    assert injected(pod(**opt_out)) is None


def test_already_injected_and_host_network_pods_are_left_alone():
    assert injected(pod(annotations={"sidecar.istio.io/status": "{}"})) is None
    host = pod()
    host["spec"]["hostNetwork"] = True
    assert injected(host) is None


def test_unknown_template_is_refused():
    answer = webhooks.inject(review(pod(annotations={"inject.istio.io/templates": "grpc-agent"})),
                             "1-31-0", VALUES)["response"]
    assert answer["allowed"] is False
    assert "grpc-agent" in answer["status"]["message"]


@pytest.mark.parametrize("glob, annotations, image", [
    ({"variant": "distroless"}, {}, "registry.istio.io/release/proxyv2:1.31.0-distroless"),
    ({"tag": "1.31.0-debug", "variant": "distroless"}, {},
     "registry.istio.io/release/proxyv2:1.31.0-distroless"),
    ({}, {"sidecar.istio.io/proxyImageType": "debug"},
     "registry.istio.io/release/proxyv2:1.31.0-debug"),
    ({"proxy": {"image": "my.reg/proxy:7"}}, {}, "my.reg/proxy:7"),
    ({}, {"sidecar.istio.io/proxyImage": "other.reg/p:1"}, "other.reg/p:1"),
])
def test_proxy_image_is_composed_as_istiod_does(glob, annotations, image):
    values = {"global": dict(VALUES["global"], **glob)}
    assert webhooks.proxy_image(values, annotations) == image


def istio_object(**changes):
    obj = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "vs", "namespace": "app"}, "spec": {"hosts": ["a"]}}
    obj.update(changes)
    return obj


@pytest.mark.parametrize("obj, fragment", [
    (istio_object(), None),
    (istio_object(spec="not an object"), "spec of VirtualService is not an object"),
    (istio_object(extra=1), 'unknown field "extra"'),
    (istio_object(apiVersion="apps/v1"), "unrecognized type"),
    (istio_object(metadata={"name": "vs", "annotations": {webhooks.ALWAYS_REJECT: "true"}}),
     "annotation found, rejecting"),
    ("text", "cannot decode configuration"),
])
def test_validation_accepts_well_formed_and_rejects_malformed(obj, fragment):
    answer = webhooks.validate(review(obj))["response"]
    assert answer["allowed"] is (fragment is None)
    if fragment:
        assert fragment in answer["status"]["message"]


def test_validation_allows_deletes():
    assert webhooks.validate(review("anything", operation="DELETE"))["response"]["allowed"]


def test_serving_names_are_istiods():
    assert serving_names("1-31-0") == [
        "istio-pilot.istio-system.svc", "istiod-1-31-0.istio-system.svc",
        "istiod-remote.istio-system.svc", "istiod.istio-system.svc"]
    assert "istiod-default.istio-system.svc" not in serving_names("default")
