"""The local clusters behave as real Kubernetes does where meshfleet depends on it."""

import errno
import json
import socket
import subprocess
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from localfleet import charts, gobuild, netns, versions
from localfleet.waits import wait_until

pytestmark = pytest.mark.fleet


def deployment(name, replicas=3, image="example.invalid/app:1"):
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def test_apiserver_reports_the_version_it_was_built_as(cluster):
    version = cluster.api_get("/version")
    assert version["gitVersion"] == f"v{versions.KUBERNETES}"
    assert version["minor"] == versions.KUBERNETES.split(".")[1]


def test_deployment_rolls_out_to_ready_pods(k8s, namespace):
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    apps.create_namespaced_deployment(namespace, deployment("web"))

    def rolled_out():
        status = apps.read_namespaced_deployment_status("web", namespace).status
        return status.ready_replicas == 3 and status.updated_replicas == 3

    wait_until(rolled_out, what="deployment web to have 3 ready replicas")
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.status.phase == "Running"
        assert pod.spec.node_name.startswith("kwok-node-")
        assert pod.status.pod_ip
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"


def widget_crd(group):
    schema = {"type": "object", "properties": {"spec": {
        "type": "object", "required": ["size"],
        "properties": {"size": {"type": "integer", "minimum": 1}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def test_crd_validates_and_stores_custom_resources(k8s, namespace):
    group = f"g{uuid.uuid4().hex[:6]}.meshfleet.test"
    ext = client.ApiextensionsV1Api(k8s)
    ext.create_custom_resource_definition(widget_crd(group))
    try:
        def established():
            crd = ext.read_custom_resource_definition(f"widgets.{group}")
            return any(c.type == "Established" and c.status == "True"
                       for c in (crd.status.conditions or []))
        wait_until(established, what="CRD established")
        custom = client.CustomObjectsApi(k8s)
        body = {"apiVersion": f"{group}/v1", "kind": "Widget",
                "metadata": {"name": "ok"}, "spec": {"size": 3}}
        custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", body)
        stored = custom.get_namespaced_custom_object(group, "v1", namespace, "widgets", "ok")
        assert stored["spec"] == {"size": 3}

        bad = dict(body, metadata={"name": "bad"}, spec={"size": 0})
        with pytest.raises(ApiException) as err:
            custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", bad)
        assert err.value.status == 422
        assert "spec.size" in err.value.body
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


def test_namespace_with_content_is_deleted_completely(k8s):
    core, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    name = f"gone-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    apps.create_namespaced_deployment(name, deployment("web", replicas=2))
    wait_until(lambda: len(core.list_namespaced_pod(name).items) == 2, what="2 pods")
    delete_namespace_and_wait(core, name)
    assert core.list_namespaced_pod(name).items == []
    assert core.list_namespaced_config_map(name).items == []


def apply(core, namespace, manager, value, force=False):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"},
            "data": {"key": value}}
    return core.patch_namespaced_config_map(
        "shared", namespace, body, field_manager=manager, force=force,
        _content_type="application/apply-patch+yaml")


def test_server_side_apply_conflicts_as_upstream(k8s, namespace):
    core = client.CoreV1Api(k8s)
    apply(core, namespace, "first", "1")
    with pytest.raises(ApiException) as err:
        apply(core, namespace, "second", "2")
    assert err.value.status == 409
    causes = json.loads(err.value.body)["details"]["causes"]
    assert causes == [{"reason": "FieldManagerConflict", "message": 'conflict with "first"',
                       "field": ".data.key"}]
    assert core.read_namespaced_config_map("shared", namespace).data == {"key": "1"}

    forced = apply(core, namespace, "second", "2", force=True)
    assert forced.data == {"key": "2"}
    owners = {m.manager for m in forced.metadata.managed_fields if m.fields_v1}
    assert owners == {"second"}


def istio_crds(ext):
    return [c.metadata.name for c in ext.list_custom_resource_definition().items
            if c.spec.group.endswith("istio.io")]


def remove_istio_crds(ext):
    """Istio's CRDs left by an earlier test file belong to another release, which a second base
    release cannot take over: each test file starts from what it needs."""
    for name in istio_crds(ext):
        ext.delete_custom_resource_definition(name)
    wait_until(lambda: not istio_crds(ext), timeout=90, what="Istio's CRDs to be deleted")


def test_helm_installs_the_real_istio_base_chart(fleet, cluster, k8s):
    helm = str(gobuild.binaries_dir() / "helm")
    chart = charts.chart_dir(versions.ISTIO_DEFAULT) / f"base-{versions.ISTIO_DEFAULT}.tgz"
    release = f"base-{uuid.uuid4().hex[:6]}"
    common = ["--kubeconfig", str(fleet.kubeconfig), "--kube-context", cluster.spec.name,
              "-n", "istio-system"]
    remove_istio_crds(client.ApiextensionsV1Api(k8s))
    install = subprocess.run([helm, "install", release, str(chart), "--create-namespace", "--wait",
                              "--timeout", "300s", *common], check=False, capture_output=True,
                             text=True)
    try:
        assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
        status = subprocess.run([helm, "status", release, "-o", "json", *common], check=True,
                                capture_output=True, text=True).stdout
        assert '"status":"deployed"' in status.replace(" ", "")
        crd = client.ApiextensionsV1Api(k8s).read_custom_resource_definition(
            "virtualservices.networking.istio.io")
        assert crd.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
        assert crd.metadata.annotations["meta.helm.sh/release-name"] == release
    finally:
        subprocess.run([helm, "uninstall", release, "--wait", *common], check=False,
                       capture_output=True)
        delete_namespace_and_wait(client.CoreV1Api(k8s), "istio-system")


def delete_namespace_and_wait(core, name):
    core.delete_namespace(name)

    def gone():
        try:
            core.read_namespace(name)
        except ApiException as err:
            return err.status == 404
        return False

    wait_until(gone, timeout=90, what=f"namespace {name} to be deleted")


def test_helm_reports_its_pinned_version():
    out = subprocess.run([str(gobuild.binaries_dir() / "helm"), "version", "--short"],
                         check=True, capture_output=True, text=True).stdout
    assert out.startswith(f"v{versions.HELM}")


def test_a_dial_outside_the_fleet_fails_at_once(fleet):
    assert netns.current_is(fleet.netns)
    sock = socket.socket()
    sock.settimeout(5)
    started = time.monotonic()
    with pytest.raises(OSError) as err:
        sock.connect(("10.250.0.1", 443))
    sock.close()
    assert err.value.errno == errno.ENETUNREACH
    assert time.monotonic() - started < 1
