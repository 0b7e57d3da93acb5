"""The in-cluster IstioOperator of Istio 1.22 and 1.23 for the local fleet, as a kubelet would run
it: for every Deployment in istio-operator whose `istio-operator` container runs an operator
image of a release the fleet has built (`build istio-1.23.6`) and that has a live pod, that
release's own `operator server` runs as a process inside the fleet's network namespace, with the
container's environment (field references read from the pod), a kubeconfig that impersonates the
pod's service account (so what it may do is what the chart's ClusterRole grants) and its
monitoring port on an address of its own. It is started again when it exits (a kubelet's
back-off), replaced when the container spec changes and stopped when the Deployment has no live
pod. Its log is clusterN/operator/<deployment>-<address>/operator.log.
"""

import json
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import gobuild, versions
from .istiod_process import (
    die_with_parent,
    environment,
    impersonating_kubeconfig,
    release_of_image,
    stop_child,
    without_own_flags,
)
from .istiod_supervisor import live_pods, restart_delay, spec_hash

NAMESPACE = "istio-operator"
CONTAINER = "istio-operator"
POD_SELECTOR = "name=istio-operator"  # the chart's pod label, the same for every revision
MONITORING_PORT = 15014
CTRLZ_PORT = 9876
OWN_FLAGS = ("monitoring-host", "monitoring-port", "ctrlz_address", "ctrlz_port", "kubeconfig")

log = logging.getLogger("operator-supervisor")


def operator_binary(release: str):
    """The operator of that release, or None when the fleet has not built it."""
    if release not in versions.ISTIO_OPERATOR_BUILDS:
        return None
    path = gobuild.istio_binaries_dir(release) / "operator"
    return path if path.exists() else None


def operator_container(deployment: dict):
    for container in deployment["spec"]["template"]["spec"].get("containers") or []:
        if container.get("name") == CONTAINER:
            return container
    return None


def own_pods(deployment: dict, pods: list) -> list:
    """The Deployment's live pods. Every revision's operator pods carry the chart's one label
    (`name: istio-operator`), so the selector alone would also match other revisions' pods:
    the pod's service account, named after the revision, tells them apart."""
    account = deployment["spec"]["template"]["spec"].get("serviceAccountName")
    return [pod for pod in live_pods(deployment, pods)
            if pod["spec"].get("serviceAccountName") == account]


def command_line(binary: Path, container: dict, address: str) -> list:
    """`operator server` with the container's flags, but its monitoring and ctrlz addresses its
    own (two operators on one address would stop each other: a port in use is fatal)."""
    argv = list(container.get("command") or ["operator", "server"])[1:]
    argv += list(container.get("args") or [])
    own = [f"--monitoring-host={address}", f"--monitoring-port={MONITORING_PORT}",
           f"--ctrlz_address={address}", f"--ctrlz_port={CTRLZ_PORT}"]
    return [str(binary)] + without_own_flags(argv, OWN_FLAGS) + own


@dataclass
class OperatorProcess:
    """`operator server` for one operator Deployment of one cluster."""

    release: str
    address: str
    workdir: Path
    digest: str = ""
    proc: subprocess.Popen = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "operator.log"

    def start(self, binary: Path, container: dict, pod: dict, admin_kubeconfig: Path) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.workdir / "kubeconfig"
        account = pod["spec"].get("serviceAccountName", "default")
        namespace = pod["metadata"].get("namespace", NAMESPACE)
        kubeconfig.write_text(json.dumps(
            impersonating_kubeconfig(admin_kubeconfig, account, namespace)))
        kubeconfig.chmod(0o600)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                command_line(binary, container, self.address),
                env=environment(container, pod, kubeconfig), cwd=self.workdir,
                stdout=out, stderr=out, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 5) -> None:
        stop_child(self.proc, grace)


@dataclass
class _Slot:
    process: OperatorProcess = None
    restarts: int = 0
    next_start: float = 0.0


class RealOperators:
    """The operator processes of one cluster."""

    def __init__(self, cluster: str, index: int, admin_kubeconfig: Path, workroot: Path):
        self.cluster, self.index = cluster, index
        self.admin_kubeconfig, self.workroot = admin_kubeconfig, workroot
        self.slots = {}  # Deployment name -> _Slot
        self._next_address = 1

    def reconcile(self, deployments: list, pods: list) -> None:
        wanted = {}
        for deployment in deployments:
            target = self._target(deployment, pods)
            if target:
                wanted[deployment["metadata"]["name"]] = target
        for name in set(self.slots) - set(wanted):
            self._stop(name, "has no live pod")
        for name, (container, pod, release, binary) in wanted.items():
            self._converge(name, container, pod, release, binary)

    def _target(self, deployment: dict, pods: list):
        container = operator_container(deployment)
        if container is None:
            return None
        release = release_of_image(container.get("image", ""))
        binary = operator_binary(release)
        running = own_pods(deployment, pods)
        if binary is None or not running:
            return None
        return container, running[0], release, binary

    def _converge(self, name, container, pod, release, binary):
        slot = self.slots.setdefault(name, _Slot())
        digest = spec_hash(container)
        if slot.process and slot.process.digest != digest:
            slot.process.stop()
            log.info("%s: %s changed: its operator stopped for a new one", self.cluster, name)
            slot.process, slot.restarts = None, 0
        if slot.process and not slot.process.alive():
            self._died(name, slot)
        if slot.process is None and time.monotonic() >= slot.next_start:
            address = f"127.{50 + self.index}.{self._next_address}.1"
            self._next_address = self._next_address % 250 + 1
            process = OperatorProcess(release=release, address=address,
                                      workdir=self.workroot / f"{name}-{address}", digest=digest)
            process.start(binary, container, pod, self.admin_kubeconfig)
            log.info("%s: started operator %s for %s on %s, pid %s", self.cluster, release,
                     name, address, process.proc.pid)
            slot.process = process

    def _died(self, name: str, slot: _Slot) -> None:
        slot.restarts += 1
        delay = restart_delay(slot.restarts)
        log.warning("%s: operator for %s exited with %s (restart %d in %ds); see %s",
                    self.cluster, name, slot.process.proc.returncode, slot.restarts, delay,
                    slot.process.log_path)
        slot.next_start = time.monotonic() + delay
        slot.process = None

    def _stop(self, name: str, why: str) -> None:
        slot = self.slots.pop(name)
        if slot.process:
            slot.process.stop()
            log.info("%s: %s %s: its operator stopped", self.cluster, name, why)

    def stop(self) -> None:
        for name in list(self.slots):
            self._stop(name, "is no longer served (the fleet stops)")
