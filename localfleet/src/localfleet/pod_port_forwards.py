"""Port-forwarding to the fleet's istiod pods, the part of a kubelet that KWOK serves.

istioctl and the IstioOperator engine's operator reach istiod through `pods/portforward` to its
monitoring port: before the operator removes a revision it asks each Running istiod pod of that
revision for `/debug/syncz` and refuses while a proxy is connected. The apiserver sends such a
request to the pod's node, which is KWOK here (the fleet makes each cluster's node address
local in its network namespace); KWOK forwards a pod's port where the pod's PortForward object
(kwok.x-k8s.io, same name and namespace) says. `PortForwards` keeps one such object per live
istiod pod: pointing at the real pilot-discovery that serves the pod's revision, or, for a
revision the stand-in serves, at `DebugEndpoint`, which answers as an istiod with no proxies
connected (the stand-in serves no xDS, so none ever is).
"""

import json
import logging
import re
import subprocess
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import paths, versions
from .progress import FleetError

NAMESPACE = "istio-system"
REV_LABEL = "istio.io/rev"
API = "kwok.x-k8s.io/v1alpha1"
MONITORING_PORT = 15014
# istiod's ports a pod would expose: monitoring, HTTP debug, xDS, secure xDS, webhooks, ctrlz.
ISTIOD_PORTS = (MONITORING_PORT, 8080, 15010, 15012, 15017, 9876)
FIELD_MANAGER = "localfleet-kubelet"

log = logging.getLogger("pod-port-forwards")


def kwok_module_dir() -> Path:
    return Path(paths.go_env_dirs()["GOMODCACHE"]) / "sigs.k8s.io" / f"kwok@v{versions.KWOK}"


def port_forward_crd() -> Path:
    """KWOK's PortForward CRD, as the KWOK module the fleet builds ships it."""
    crd = kwok_module_dir() / "kustomize" / "crd" / "bases" / "kwok.x-k8s.io_portforwards.yaml"
    if not crd.exists():
        raise FleetError(f"KWOK's PortForward CRD is missing ({crd}): run "
                         "'python -m localfleet build kwok' to fetch its module")
    return crd


def debug_address(cluster_index: int) -> str:
    """The stand-in's debug endpoint of a cluster (real istiods use 127.<10+i>, operators
    127.<50+i>)."""
    return f"127.{90 + cluster_index}.0.1"


def port_forward(pod: dict, address: str, ports=ISTIOD_PORTS) -> dict:
    """The PortForward that sends each of the pod's `ports` to the same port on `address`; the
    pod owns it, so it goes with the pod."""
    meta = pod["metadata"]
    return {
        "apiVersion": API, "kind": "PortForward",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace", NAMESPACE),
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod",
                                          "name": meta["name"], "uid": meta["uid"]}]},
        "spec": {"forwards": [{"ports": [port], "target": {"address": address, "port": port}}
                              for port in ports]},
    }


def is_live(pod: dict) -> bool:
    return (not pod["metadata"].get("deletionTimestamp")
            and pod.get("status", {}).get("phase") not in ("Failed", "Succeeded"))


class PortForwards:
    """The PortForward objects of one cluster's istiod pods, written as the fleet's kubelet."""

    def __init__(self, cluster: str, api):
        self.cluster, self.api = cluster, api
        self.written = {}  # pod name -> (uid, address) last applied

    def reconcile(self, pods: list, target_of) -> None:
        """`target_of(pod)` gives the address that serves the pod's ports, or None for now."""
        live = {pod["metadata"]["name"]: pod for pod in pods if is_live(pod)}
        for name in set(self.written) - set(live):
            del self.written[name]  # the pod's deletion takes its PortForward (ownerReference)
        for name, pod in live.items():
            address = target_of(pod)
            if address and self.written.get(name) != (pod["metadata"]["uid"], address):
                self._apply(pod, address)

    def _apply(self, pod: dict, address: str) -> None:
        name = pod["metadata"]["name"]
        path = (f"/apis/{API}/namespaces/{NAMESPACE}/portforwards/{name}"
                f"?fieldManager={FIELD_MANAGER}&force=true")
        try:
            self.api.request("PATCH", path, port_forward(pod, address),
                             content_type="application/apply-patch+yaml")
        except Exception as err:  # the pod may be gone, the CRD not served yet: retried
            log.warning("%s: cannot write PortForward %s: %s", self.cluster, name, err)
            return
        self.written[name] = (pod["metadata"]["uid"], address)
        log.info("%s: istiod pod %s: ports forwarded to %s", self.cluster, name, address)


class _DebugHandler(BaseHTTPRequestHandler):
    server_version = "istiod-standin-debug"
    # What istiod's debug interface answers with no proxy connected.
    ANSWERS = {"/debug/syncz": [], "/debug/connections": {"totalClients": 0, "clients": []}}

    def do_GET(self):
        answer = self.ANSWERS.get(self.path.split("?")[0])
        body = json.dumps(answer).encode() if answer is not None else b"404 page not found\n"
        self.send_response(200 if answer is not None else 404)
        self.send_header("Content-Type", "application/json" if answer is not None
                         else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("debug endpoint: " + format, *args)


class DebugEndpoint(ThreadingHTTPServer):
    """istiod's monitoring port for the revisions the stand-in serves of one cluster."""

    daemon_threads = True

    def __init__(self, address: str, port: int = MONITORING_PORT):
        super().__init__((address, port), _DebugHandler)
        self.address = address
        threading.Thread(target=self.serve_forever, daemon=True,
                         name=f"debug endpoint {address}").start()


def get_through_port_forward(cluster, pod: str, port: int, path: str, timeout: float = 30):
    """(status, body) of GET `path` on a pod's port through `kubectl port-forward`, the way
    istioctl reaches istiod: apiserver, then the node's kubelet (KWOK), then the target."""
    proc = subprocess.Popen(
        [str(cluster.bin / "kubectl"), f"--kubeconfig={cluster.kubeconfig_path('admin')}",
         "-n", NAMESPACE, "port-forward", f"pod/{pod}", f":{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:<local> -> <port>"
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            raise FleetError(f"kubectl port-forward pod/{pod}: {line}{proc.stderr.read()[-500:]}")
        url = f"http://127.0.0.1:{match.group(1)}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
    finally:
        proc.terminate()
        proc.wait(10)
