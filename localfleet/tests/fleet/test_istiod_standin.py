"""The istiod stand-in behind the REAL webhook objects of the REAL Istio charts: injection by
tag and by revision, istiod's own writes to the webhook configurations, validation, and
revisions that are not Ready."""

import base64
import json
import socket
import ssl
import subprocess
import uuid

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from localfleet import audit, charts, gobuild, netns, pod_port_forwards, stages, versions
from localfleet.fleet import Fleet
from localfleet.waits import wait_until

pytestmark = pytest.mark.fleet

ISTIO_NS = "istio-system"
REVISION, CANARY, TAG = "1-31-0", "1-30-3", "prod-stable"
RELEASE_IMAGE = "registry.istio.io/release/proxyv2:1.31.0"
CANARY_IMAGE = "registry.istio.io/release/proxyv2:1.30.3"


@pytest.fixture(scope="module")
def fleet(fleet):
    """The session's fleet when the stand-in serves it; else a two-cluster stand-in fleet of this
    module's own (the session's is entered again after it)."""
    if not fleet.real_istiod:
        yield fleet
        return
    own = Fleet(f"{fleet.name}-standin"[:20])
    own.down()
    own = Fleet(own.name)
    own.up(2, real_istiod=False)
    try:
        yield own
    finally:
        own.down()
        netns.enter(fleet.netns)


def chart(version, name):
    return str(charts.chart_dir(version) / f"{name}-{version}.tgz")


class Target:
    """The cluster these tests install Istio into (not the first: other tests use that one)."""

    def __init__(self, fleet):
        self.fleet, self.cluster = fleet, fleet.clusters[1]
        api = config.new_client_from_config(config_file=str(fleet.kubeconfig),
                                            context=self.cluster.spec.name)
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.admission = client.AdmissionregistrationV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.namespaces = []

    def helm(self, *args, namespace=ISTIO_NS):
        return subprocess.run(
            [str(gobuild.binaries_dir() / "helm"), *args, "-n", namespace,
             "--kubeconfig", str(self.fleet.kubeconfig), "--kube-context", self.cluster.spec.name],
            check=True, capture_output=True, text=True).stdout

    def namespace(self, labels=None):
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})
        self.namespaces.append(name)
        return name

    def pod(self, namespace, labels=None, annotations=None):
        body = {"metadata": {"generateName": "app-", "labels": labels or {},
                             "annotations": annotations or {}},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}}
        return self.core.create_namespaced_pod(namespace, body)

    @property
    def ca_bundle(self):
        return base64.b64encode((self.fleet.standin_dir / "ca.crt").read_bytes()).decode()


@pytest.fixture(scope="module")
def istio(fleet):
    """Base chart and two revisions (1-31-0 with tag prod-stable, 1-30-3), as the official
    canary procedure installs them."""
    if len(fleet.clusters) < 2:
        pytest.skip("needs a fleet of at least two clusters")
    target = Target(fleet)
    release, canary = versions.ISTIO_DEFAULT, versions.ISTIO_PREVIOUS
    target.helm("install", "istio-base", chart(release, "base"), "--create-namespace",
                "--set", f"defaultRevision={REVISION}")
    target.helm("install", f"istiod-{REVISION}", chart(release, "istiod"), "--set",
                f"revision={REVISION}", "--set", f"revisionTags={{{TAG}}}", "--wait")
    target.helm("install", f"istiod-{CANARY}", chart(canary, "istiod"), "--set",
                f"revision={CANARY}", "--wait")
    yield target
    for name in target.namespaces:
        target.core.delete_namespace(name)
    for release_name in (f"istiod-{CANARY}", f"istiod-{REVISION}", "istio-base"):
        target.helm("uninstall", release_name, "--wait")
    target.core.delete_namespace(ISTIO_NS)
    wait_until(lambda: ISTIO_NS not in {n.metadata.name for n in target.core.list_namespace().items},
             timeout=120, what=f"namespace {ISTIO_NS} to be deleted")


def containers(pod):
    return {c.name: c.image for c in pod.spec.containers}


def injection_status(pod):
    return json.loads(pod.metadata.annotations["sidecar.istio.io/status"])


def expected_proxy_image(istio, revision):
    """<hub>/<proxy image>:<tag> from the revision's injector ConfigMap, as istiod composes it."""
    data = istio.core.read_namespaced_config_map(f"istio-sidecar-injector-{revision}", ISTIO_NS)
    glob = json.loads(data.data["values"])["global"]
    return f"{glob['hub']}/{glob['proxy']['image']}:{glob['tag']}"


def standin_log(istio):
    return (istio.fleet.standin_dir / "standin.log").read_text()


def revision_webhooks(configs, revision):
    return {c.metadata.name: c.webhooks for c in configs.items
            if (c.metadata.labels or {}).get("istio.io/rev") == revision}


def test_istiod_patches_the_ca_bundle_and_fails_validation_closed(istio):
    def patched():
        injectors = revision_webhooks(
            istio.admission.list_mutating_webhook_configuration(), REVISION)
        validators = revision_webhooks(
            istio.admission.list_validating_webhook_configuration(), REVISION)
        hooks = [h for found in (injectors, validators) for hooks in found.values() for h in hooks]
        done = all(h.client_config.ca_bundle == istio.ca_bundle for h in hooks) and all(
            h.failure_policy == "Fail" for hooks in validators.values() for h in hooks)
        return done and (sorted(injectors), sorted(validators))

    names = wait_until(patched, what="caBundle patched and validators set to Fail")
    assert names == ([f"istio-revision-tag-{TAG}", f"istio-sidecar-injector-{REVISION}"],
                     [f"istio-validator-{REVISION}-{ISTIO_NS}", "istiod-default-validator"])
    validator = istio.admission.read_validating_webhook_configuration(
        f"istio-validator-{REVISION}-{ISTIO_NS}")
    owners = {(m.manager, m.operation) for m in validator.metadata.managed_fields
              if "f:failurePolicy" in json.dumps(m.fields_v1)}
    assert owners == {("pilot-discovery", "Update")}
    istiod = f"system:serviceaccount:{ISTIO_NS}:istiod-{REVISION}"
    writes = {(e["verb"], e["objectRef"]["name"])
              for e in audit.writes(istio.cluster.audit_log, user=istiod)}
    assert ("update", f"istio-validator-{REVISION}-{ISTIO_NS}") in writes
    assert ("update", f"istio-revision-tag-{TAG}") in writes


def test_applying_the_charts_failure_policy_conflicts_with_istiod(istio):
    name = f"istio-validator-{REVISION}-{ISTIO_NS}"
    wait_until(lambda: istio.admission.read_validating_webhook_configuration(name)
             .webhooks[0].failure_policy == "Fail", what="validator set to Fail")
    intent = {"apiVersion": "admissionregistration.k8s.io/v1",
              "kind": "ValidatingWebhookConfiguration", "metadata": {"name": name},
              "webhooks": [{"name": "rev.validation.istio.io", "failurePolicy": "Ignore"}]}
    with pytest.raises(ApiException) as err:
        istio.admission.patch_validating_webhook_configuration(
            name, intent, field_manager="installer", _content_type="application/apply-patch+yaml")
    assert err.value.status == 409
    causes = json.loads(err.value.body)["details"]["causes"]
    assert {(c["message"], c["field"]) for c in causes} == {(
        'conflict with "pilot-discovery" using admissionregistration.k8s.io/v1',
        '.webhooks[name="rev.validation.istio.io"].failurePolicy')}


def test_a_namespace_labelled_with_a_tag_gets_the_tagged_revisions_proxy(istio):
    pod = istio.pod(istio.namespace({"istio.io/rev": TAG}))
    assert pod.metadata.annotations["istio.io/rev"] == REVISION
    assert containers(pod) == {"app": "example.invalid/app:1",
                               "istio-proxy": expected_proxy_image(istio, REVISION)}
    assert expected_proxy_image(istio, REVISION) == RELEASE_IMAGE
    assert injection_status(pod)["revision"] == REVISION
    assert [c.name for c in pod.spec.init_containers] == ["istio-init"]
    assert (f"(istiod-{REVISION}) /inject sni=istiod-{REVISION}.{ISTIO_NS}.svc "
            f"CREATE Pod {pod.metadata.namespace}/app-") in standin_log(istio)


def test_a_namespace_labelled_with_a_revision_gets_that_revisions_proxy(istio):
    pod = istio.pod(istio.namespace({"istio.io/rev": CANARY}))
    assert pod.metadata.annotations["istio.io/rev"] == CANARY
    assert containers(pod)["istio-proxy"] == expected_proxy_image(istio, CANARY) == CANARY_IMAGE
    assert injection_status(pod)["revision"] == CANARY


def test_a_pod_label_selects_a_tag_in_an_unlabelled_namespace(istio):
    pod = istio.pod(istio.namespace(), labels={"istio.io/rev": TAG})
    assert pod.metadata.annotations["istio.io/rev"] == REVISION
    assert containers(pod)["istio-proxy"] == RELEASE_IMAGE


def test_a_pod_that_opts_out_is_not_injected(istio):
    pod = istio.pod(istio.namespace({"istio.io/rev": TAG}),
                    annotations={"sidecar.istio.io/inject": "false"})
    assert list(containers(pod)) == ["app"]
    assert "istio.io/rev" not in pod.metadata.annotations


def test_gateway_chart_pods_get_the_revisions_proxy_image(istio):
    namespace = istio.namespace()
    istio.helm("install", "gw", chart(versions.ISTIO_DEFAULT, "gateway"), "--set",
               f"revision={REVISION}", namespace=namespace)
    pods = wait_until(lambda: istio.core.list_namespaced_pod(namespace).items, what="gateway pod")
    assert containers(pods[0]) == {"istio-proxy": RELEASE_IMAGE}
    assert not pods[0].spec.init_containers
    assert injection_status(pods[0])["initContainers"] is None
    istio.helm("uninstall", "gw", namespace=namespace)


def test_an_istiod_pods_monitoring_port_answers_through_a_port_forward(istio):
    """What istioctl and the IstioOperator's operator ask before removing a revision: the
    stand-in has no proxies connected, and says so through the pod's port-forward."""
    pod = istio.core.list_namespaced_pod(
        ISTIO_NS, label_selector=f"app=istiod,istio.io/rev={REVISION}").items[0].metadata
    forward = wait_until(lambda: _port_forward(istio, pod.name), what=f"PortForward {pod.name}")
    assert forward["metadata"]["ownerReferences"][0]["uid"] == pod.uid
    status, body = pod_port_forwards.get_through_port_forward(
        istio.cluster, pod.name, 15014, "/debug/syncz")
    assert (status, json.loads(body)) == (200, [])
    status, _ = pod_port_forwards.get_through_port_forward(
        istio.cluster, pod.name, 15014, "/debug/unknown")
    assert status == 404


def _port_forward(istio, name):
    try:
        return istio.custom.get_namespaced_custom_object(
            "kwok.x-k8s.io", "v1alpha1", ISTIO_NS, "portforwards", name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def test_validation_accepts_well_formed_config_and_denies_rejected_config(istio):
    namespace = istio.namespace()
    body = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "ok"},
            "spec": {"hosts": ["a.example"], "http": [{"route": [{"destination": {"host": "a"}}]}]}}
    istio.custom.create_namespaced_custom_object("networking.istio.io", "v1", namespace,
                                                 "virtualservices", body)
    body["metadata"] = {"name": "rejected",
                        "annotations": {"internal.istio.io/webhook-always-reject": "true"}}
    with pytest.raises(ApiException) as err:
        istio.custom.create_namespaced_custom_object("networking.istio.io", "v1", namespace,
                                                     "virtualservices", body)
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == (
        'admission webhook "validation.istio.io" denied the request: configuration is invalid: '
        '"internal.istio.io/webhook-always-reject" annotation found, rejecting')


def test_bad_requests_do_not_stop_the_standin(istio):
    address = (istio.core.read_namespaced_service(f"istiod-{REVISION}", ISTIO_NS).spec.cluster_ip,
               443)
    with socket.create_connection(address, timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not TLS
        try:
            assert plain.recv(100) == b""
        except ConnectionResetError:
            pass
    tls = ssl.create_default_context(cafile=istio.fleet.standin_dir / "ca.crt")
    with socket.create_connection(address, timeout=5) as raw, tls.wrap_socket(
            raw, server_hostname=f"istiod-{REVISION}.{ISTIO_NS}.svc") as conn:
        conn.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{oops")
        assert conn.recv(100).startswith(b"HTTP/1.0 400 ")
    assert istio.fleet.standin_alive()
    pod = istio.pod(istio.namespace({"istio.io/rev": TAG}))
    assert containers(pod)["istio-proxy"] == RELEASE_IMAGE


def hold_istiod(istio, revision, hold):
    """Recreate istiod's pods with the given hold label (None: a normal, Ready pod)."""
    patch = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None},
                      "template": {"metadata": {"labels": {stages.HOLD_LABEL: hold}}}}}
    istio.apps.patch_namespaced_deployment(f"istiod-{revision}", ISTIO_NS, patch)


def injection_error(istio, namespace):
    try:
        istio.pod(namespace)
    except ApiException as err:
        return err.body
    return None


def refused(istio, namespace):
    error = injection_error(istio, namespace)
    return error if error and "connection refused" in error else None


def istiod_pods(istio, revision):
    pods = istio.core.list_namespaced_pod(
        ISTIO_NS, label_selector=f"app=istiod,istio.io/rev={revision}").items
    return [(p.status.phase, {c.type: c.status for c in p.status.conditions or []}.get("Ready"))
            for p in pods]


def test_pods_cannot_be_created_while_their_revision_is_not_ready(istio):
    namespace = istio.namespace({"istio.io/rev": CANARY})
    hold_istiod(istio, CANARY, "not-ready")
    try:
        error = wait_until(lambda: refused(istio, namespace), what="connections to be refused")
        message = json.loads(error)["message"]
        assert message.startswith('Internal error occurred: failed calling webhook '
                                  '"rev.namespace.sidecar-injector.istio.io"')
        assert f"https://istiod-{CANARY}.{ISTIO_NS}.svc:443/inject" in message
        wait_until(lambda: istiod_pods(istio, CANARY) == [("Running", "False")],
                 what="istiod's only pod to be Running and not Ready")
    finally:
        hold_istiod(istio, CANARY, None)
    wait_until(lambda: injection_error(istio, namespace) is None, what="injection to work again")
