"""What a kubelet and kube-proxy would do for the real istiods of one cluster of the local fleet.

For every istiod Deployment in istio-system whose pilot image names a release the fleet has
built, one pilot-discovery process (istiod_process) runs with the Deployment's own container
spec; it is started again when it dies (with a kubelet's growing back-off) and replaced when the
container spec changes (the old one serves until the new one is ready). Once a process reports
ready, the Deployment's pods are annotated ISTIOD_SERVING, which is what the fleet's KWOK stages
wait for before they turn an istiod pod Ready. `Forwarder` carries a Service's ClusterIP:443 to
the serving process's webhook port, the way kube-proxy carries it to a pod's targetPort.
"""

import hashlib
import json
import logging
import socket
import socketserver
import threading
import time
from pathlib import Path

from .istiod_process import (
    WEBHOOK_PORT,
    IstiodProcess,
    binary_for,
    discovery_container,
    release_of_image,
)
from .stages import ISTIOD_SERVING

NAMESPACE = "istio-system"
REV_LABEL = "istio.io/rev"
MAX_BACKOFF = 30

log = logging.getLogger("istiod-supervisor")


def restart_delay(restarts: int) -> int:
    """Seconds before a process that exited `restarts` times starts again (a kubelet's
    back-off: 2, 4, 8 ... up to MAX_BACKOFF)."""
    return min(2 ** min(restarts, 5), MAX_BACKOFF)


def revision_of(deployment: dict) -> str:
    return deployment["metadata"].get("labels", {}).get(REV_LABEL) or "default"


def spec_hash(container: dict) -> str:
    wanted = {key: container.get(key) for key in ("image", "args", "env")}
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:10]


def selects(deployment: dict, pod: dict) -> bool:
    wanted = deployment["spec"].get("selector", {}).get("matchLabels") or {}
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in wanted.items())


def live_pods(deployment: dict, pods: list) -> list:
    return [pod for pod in pods if selects(deployment, pod)
            and not pod["metadata"].get("deletionTimestamp")
            and pod.get("status", {}).get("phase") not in ("Failed", "Succeeded")]


class Running:
    """The processes of one Deployment: the current one (newest spec) and the one it replaces."""

    def __init__(self, revision: str):
        self.revision = revision
        self.current = None  # (spec hash, IstiodProcess)
        self.previous = None
        self.restarts = 0
        self.next_start = 0.0

    def all(self):
        return [entry[1] for entry in (self.current, self.previous) if entry]


class RealIstiods:
    """The real istiods of one cluster."""

    def __init__(self, cluster: str, index: int, api, admin_kubeconfig: Path, workroot: Path):
        self.cluster, self.index = cluster, index
        self.api = api  # acting as the local fleet's kubelet: it marks pods serving
        self.admin_kubeconfig, self.workroot = admin_kubeconfig, workroot
        self.running = {}  # Deployment name -> Running
        self._next_address = 1
        self._lock = threading.Lock()

    # -------------------------------------------------------- what serves

    def handles(self, revision: str) -> bool:
        """Whether a real istiod runs (or is starting) for the revision: then the stand-in
        does not serve it."""
        with self._lock:
            return any(r.revision == revision for r in self.running.values())

    def serving(self, revision: str):
        """A ready process of the revision (the newest), or None."""
        with self._lock:
            candidates = [p for r in self.running.values() for p in r.all()
                          if p.revision == revision]
        for process in candidates:
            if process.ready():
                return process
        return None

    def starting(self) -> bool:
        """Whether a process is up but not ready yet (the caller then looks again soon)."""
        with self._lock:
            processes = [p for r in self.running.values() for p in r.all()]
        return any(p.starting() for p in processes)

    # -------------------------------------------------------- reconcile

    def reconcile(self, deployments: list, pods: list) -> None:
        wanted = {}
        for deployment in deployments:
            target = self._target(deployment, pods)
            if target:
                wanted[deployment["metadata"]["name"]] = target
            else:  # the stand-in serves it: nothing to wait for
                self._mark(live_pods(deployment, pods))
        for name in set(self.running) - set(wanted):
            self._stop_all(name)
        for name, (deployment, container, pod, release, binary) in wanted.items():
            self._converge(name, deployment, container, pod, release, binary)
            self._mark_serving(name, live_pods(deployment, pods))

    def _target(self, deployment: dict, pods: list):
        try:
            container = discovery_container(deployment)
        except (KeyError, ValueError):
            return None
        release = release_of_image(container.get("image", ""))
        binary = binary_for(release)
        running = live_pods(deployment, pods)
        if binary is None or not running:
            return None
        return deployment, container, running[0], release, binary

    def _converge(self, name, deployment, container, pod, release, binary):
        with self._lock:
            state = self.running.setdefault(name, Running(revision_of(deployment)))
        digest = spec_hash(container)
        if state.current and state.current[0] != digest:
            self._retire(state)
        if state.current and not state.current[1].alive():
            self._died(name, state)
        if state.current is None and time.monotonic() >= state.next_start:
            process = self._new_process(name, deployment)
            process.start(binary, container, pod, self.admin_kubeconfig)
            log.info("%s: started pilot-discovery %s for %s (revision %s) on %s, pid %s",
                     self.cluster, release, name, process.revision, process.address,
                     process.proc.pid)
            with self._lock:
                state.current = (digest, process)
        if state.previous and state.current and state.current[1].ready():
            state.previous[1].stop()
            log.info("%s: %s: the replaced pilot-discovery stopped", self.cluster, name)
            state.previous = None

    def _retire(self, state: Running) -> None:
        if state.previous:
            state.previous[1].stop()
        state.previous, state.current = state.current, None

    def _died(self, name: str, state: Running) -> None:
        process = state.current[1]
        code = process.proc.returncode
        state.restarts += 1
        delay = restart_delay(state.restarts)
        log.warning("%s: pilot-discovery for %s exited with %s (restart %d in %ds); see %s",
                    self.cluster, name, code, state.restarts, delay, process.log_path)
        state.next_start = time.monotonic() + delay
        with self._lock:
            state.current = None

    def _new_process(self, name: str, deployment: dict) -> IstiodProcess:
        address = f"127.{10 + self.index}.{self._next_address}.1"
        self._next_address = self._next_address % 250 + 1
        return IstiodProcess(revision=revision_of(deployment), address=address,
                             workdir=self.workroot / f"{name}-{address}")

    def _stop_all(self, name: str) -> None:
        with self._lock:
            state = self.running.pop(name)
        for process in state.all():
            process.stop()
        log.info("%s: %s is gone: its pilot-discovery stopped", self.cluster, name)

    def _mark_serving(self, name: str, pods: list) -> None:
        state = self.running.get(name)
        if state and state.current and state.current[1].ready():
            self._mark(pods)

    def _mark(self, pods: list) -> None:
        for pod in pods:
            if (pod["metadata"].get("annotations") or {}).get(ISTIOD_SERVING) == "true":
                continue
            path = f"/api/v1/namespaces/{NAMESPACE}/pods/{pod['metadata']['name']}"
            try:
                self.api.request("PATCH", path, {"metadata": {"annotations": {
                    ISTIOD_SERVING: "true"}}}, content_type="application/merge-patch+json")
            except Exception as err:  # the pod may be gone; the next pass retries
                log.warning("%s: cannot mark %s serving: %s", self.cluster, path, err)

    def stop(self) -> None:
        for name in list(self.running):
            self._stop_all(name)


# ---------------------------------------------------------------- kube-proxy's part

class _Relay(socketserver.BaseRequestHandler):
    def handle(self):
        address = self.server.resolve()
        if address is None:
            return  # nothing serves at this moment: the caller sees the connection end
        try:
            upstream = socket.create_connection((address, WEBHOOK_PORT), timeout=5)
        except OSError:
            return
        upstream.settimeout(None)
        pump = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
        pump.start()
        _copy(self.request, upstream)
        pump.join(5)


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Forwarder(socketserver.ThreadingTCPServer):
    """A Service's ClusterIP:443, carried to the webhook port of whichever real istiod of the
    revision is serving when a connection arrives (`resolve` gives its address), so replacing
    an istiod never closes the Service's port."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: str, port: int, service: str, revision: str, resolve):
        self.resolve = resolve
        self.serves = (service, revision, "real istiod")
        self.where = f"{address}:{port} ({service} -> real istiod of {revision})"
        super().__init__((address, port), _Relay)
        threading.Thread(target=self.serve_forever, daemon=True, name=self.where).start()

    def close(self):
        self.shutdown()
        self.server_close()
