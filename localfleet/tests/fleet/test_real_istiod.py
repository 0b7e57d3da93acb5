"""Real istiods in the local fleet (`up --istiod real`): pilot-discovery of each revision's own
release behind the real webhook objects of the real charts. A fleet of one cluster of its own,
started for this module; the tests build on each other in file order. The previous release's
binaries are built only on request (`localfleet build istio-1.30.3`); without them its revision
is served by the stand-in, side by side with the real istiod of the default release."""

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from localfleet import charts, gobuild, istiod_process, netns, pod_port_forwards, stages, versions
from localfleet.fleet import Fleet
from localfleet.waits import wait_until

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

ISTIO_NS = "istio-system"
RELEASE, PREVIOUS = versions.ISTIO_DEFAULT, versions.ISTIO_PREVIOUS
REVISION, CANARY = RELEASE.replace(".", "-"), PREVIOUS.replace(".", "-")
PREVIOUS_BUILT = istiod_process.binary_for(PREVIOUS) is not None


def chart(version, name):
    return str(charts.chart_dir(version) / f"{name}-{version}.tgz")


class RealFleet:
    def __init__(self, fleet):
        self.fleet, self.cluster = fleet, fleet.clusters[0]
        api = config.new_client_from_config(config_file=str(fleet.kubeconfig),
                                            context=self.cluster.spec.name)
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.admission = client.AdmissionregistrationV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def helm(self, *args):
        return subprocess.run(
            [str(gobuild.binaries_dir() / "helm"), *args, "-n", ISTIO_NS,
             "--kubeconfig", str(self.fleet.kubeconfig), "--kube-context", self.cluster.spec.name],
            check=True, capture_output=True, text=True).stdout

    def namespace(self, revision):
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.core.create_namespace({"metadata": {"name": name,
                                                 "labels": {"istio.io/rev": revision}}})
        return name

    def pod(self, namespace):
        body = {"metadata": {"generateName": "app-", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}}
        return self.core.create_namespaced_pod(namespace, body)

    def pilot_discovery_pids(self, deployment):
        """pids of the pilot-discovery processes serving `deployment` (by their work dir)."""
        root = self.cluster.dir / "istiod"
        found = []
        for entry in Path("/proc").iterdir():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
                exe = os.readlink(entry / "exe")
            except OSError:
                continue
            if (exe.endswith("/pilot-discovery") and cwd.parent == root
                    and cwd.name.startswith(f"{deployment}-127.")):
                found.append(int(entry.name))
        return found


@pytest.fixture(scope="module")
def real(fleet):
    """A one-cluster fleet with real istiods; the session's fleet is entered again after it."""
    running = Fleet(f"{fleet.name}-real"[:20])
    running.down()
    running = Fleet(running.name)
    running.up(1, real_istiod=True)
    try:
        yield RealFleet(running)
    finally:
        running.down()
        netns.enter(fleet.netns)


def proxy_image(pod):
    return next(c.image for c in pod.spec.containers if c.name == "istio-proxy")


def test_each_revision_gets_pilot_discovery_of_its_release_ready_before_its_pods(real):
    real.helm("install", "istio-base", chart(RELEASE, "base"), "--create-namespace",
              "--set", f"defaultRevision={REVISION}")
    real.helm("install", f"istiod-{REVISION}", chart(RELEASE, "istiod"), "--set",
              f"revision={REVISION}", "--wait", "--timeout", "3m")
    real.helm("install", f"istiod-{CANARY}", chart(PREVIOUS, "istiod"), "--set",
              f"revision={CANARY}", "--wait", "--timeout", "3m")
    for revision, expected in ((REVISION, 1), (CANARY, 1 if PREVIOUS_BUILT else 0)):
        assert len(real.pilot_discovery_pids(f"istiod-{revision}")) == expected, revision
        pods = real.core.list_namespaced_pod(ISTIO_NS, label_selector=f"istio.io/rev={revision}")
        assert pods.items and all(
            (p.metadata.annotations or {}).get(stages.ISTIOD_SERVING) == "true"
            for p in pods.items)
    log = next((real.cluster.dir / "istiod").glob(f"istiod-{REVISION}-*/pilot-discovery.log"))
    assert f"version: {RELEASE}-" in log.read_text()  # istiod logs its version.Info at start


def test_istiod_patches_its_own_ca_into_its_webhooks(real):
    def patched():
        hooks = real.admission.read_mutating_webhook_configuration(
            f"istio-sidecar-injector-{REVISION}").webhooks
        return all(h.client_config.ca_bundle for h in hooks)
    wait_until(patched, "pilot-discovery wrote caBundle into its injector")
    secret = real.core.read_namespaced_secret("istio-ca-secret", ISTIO_NS)
    assert "ca-cert.pem" in secret.data


def test_a_pod_is_injected_with_the_template_of_its_revisions_release(real):
    for revision, release, by_istiod in ((REVISION, RELEASE, True),
                                         (CANARY, PREVIOUS, PREVIOUS_BUILT)):
        pod = real.pod(real.namespace(revision))
        assert proxy_image(pod) == f"registry.istio.io/release/proxyv2:{release}", revision
        assert pod.metadata.annotations["istio.io/rev"] == revision
        proxy = next(c for c in pod.spec.containers if c.name == "istio-proxy")
        env = {e.name for e in proxy.env}
        # parts of the release template the stand-in never renders
        rendered = {"ISTIO_META_CLUSTER_ID", "ISTIO_META_MESH_ID", "TRUST_DOMAIN", "CA_ADDR"}
        assert (rendered <= env) == by_istiod, revision


def test_a_port_forward_to_an_istiod_pod_reaches_its_pilot_discovery(real):
    pod = real.core.list_namespaced_pod(
        ISTIO_NS, label_selector=f"app=istiod,istio.io/rev={REVISION}").items[0].metadata.name
    status, body = pod_port_forwards.get_through_port_forward(real.cluster, pod, 15014,
                                                              "/version")
    assert status == 200, body
    assert body.startswith(f"{RELEASE}-")  # pilot-discovery's own build, e.g. 1.31.0-<commit>-Clean
    status, body = pod_port_forwards.get_through_port_forward(real.cluster, pod, 15014,
                                                              "/debug/syncz")
    assert (status, json.loads(body)) == (200, [])  # no proxy is connected


def test_the_validator_rejects_an_invalid_virtual_service_through_istiod(real):
    wait_until(lambda: all(
        h.failure_policy == "Fail" for h in real.admission.read_validating_webhook_configuration(
            f"istio-validator-{REVISION}-{ISTIO_NS}").webhooks),
        "istiod turned its validator to fail closed")
    invalid = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": "bad", "namespace": "default",
                            "labels": {"istio.io/rev": REVISION}},
               "spec": {"hosts": ["web"], "http": [{
                   "match": [{"uri": {"regex": "(unclosed"}}],  # the CRD schema cannot tell
                   "route": [{"destination": {"host": "web"}}]}]}}
    with pytest.raises(ApiException) as denied:
        real.custom.create_namespaced_custom_object("networking.istio.io", "v1", "default",
                                                    "virtualservices", invalid)
    assert "denied the request" in denied.value.body and "regex" in denied.value.body


def test_a_killed_istiod_fails_injection_as_a_real_one_would_and_comes_back(real):
    namespace = real.namespace(REVISION)
    [pid] = real.pilot_discovery_pids(f"istiod-{REVISION}")
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ApiException) as refused:
        wait_until(lambda: not real.pilot_discovery_pids(f"istiod-{REVISION}"), "it died")
        real.pod(namespace)
    assert "failed calling webhook" in refused.value.body
    wait_until(lambda: _created(real, namespace), "injection back after the restart",
               timeout=120)


def _created(real, namespace):
    try:
        return proxy_image(real.pod(namespace)).endswith(f":{RELEASE}")
    except ApiException:
        return False


def test_removing_a_revision_stops_its_istiod(real):
    real.helm("uninstall", f"istiod-{REVISION}", "--wait")
    wait_until(lambda: not real.pilot_discovery_pids(f"istiod-{REVISION}"),
               "the removed revision's pilot-discovery stopped")
    assert proxy_image(real.pod(real.namespace(CANARY))).endswith(f":{PREVIOUS}")
