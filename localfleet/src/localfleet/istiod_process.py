"""Real istiod for the local fleet: pilot-discovery of a revision's own release, run as a process
inside the fleet's network namespace for an istiod Deployment of one cluster, with the command
line and environment of the Deployment's `discovery` container and its own loopback address.

A pod would get its service account's token and a pod IP; this process gets a kubeconfig that
impersonates that service account (so RBAC is the chart's) and an address 127.<cluster>.<n>.1,
on which it listens with every one of istiod's ports. istiod_supervisor forwards the revision's
Service ClusterIP:443 to its webhook port once it reports ready.
"""

import ctypes
import json
import re
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import gobuild, versions

NAMESPACE = "istio-system"
WEBHOOK_PORT = 15017
HTTP_PORT = 8080
# Flags whose values this process sets itself: its addresses and its cluster access.
OWN_FLAGS = ("httpAddr", "httpsAddr", "grpcAddr", "secureGRPCAddr", "monitoringAddr",
             "kubeconfig", "ctrlz_address", "ctrlz_port")
_PR_SET_PDEATHSIG = 1


def release_of_image(image: str) -> str:
    """The Istio release of a pilot image (`<hub>/pilot:1.30.3`, `...:1.31.0-distroless`)."""
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    match = re.match(r"(\d+\.\d+\.\d+)", tag)
    return match.group(1) if match else ""


def binary_for(release: str):
    """pilot-discovery of that release, or None when the fleet has not built it."""
    if release not in versions.ISTIO_BUILDS:
        return None
    path = gobuild.istio_binaries_dir(release) / "pilot-discovery"
    return path if path.exists() else None


def discovery_container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"].get("containers") or []
    for container in containers:
        if container.get("name") == "discovery":
            return container
    raise ValueError("no container named discovery")


def without_own_flags(args: list, own_flags=OWN_FLAGS) -> list:
    """The container's args minus the flags this process sets (`--f=v` and `--f v` forms)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.lstrip("-").split("=", 1)[0] if arg.startswith("-") else None
        if name in own_flags:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return kept


def command_line(binary: Path, container: dict, address: str, kubeconfig: Path) -> list:
    args = without_own_flags(list(container.get("args") or ["discovery"]))
    return [str(binary)] + args + [
        f"--httpAddr={address}:{HTTP_PORT}", f"--httpsAddr={address}:{WEBHOOK_PORT}",
        f"--grpcAddr={address}:15010", f"--secureGRPCAddr={address}:15012",
        f"--monitoringAddr={address}:15014", f"--ctrlz_address={address}",
        f"--kubeconfig={kubeconfig}"]


def environment(container: dict, pod: dict, kubeconfig: Path) -> dict:
    """The container's env with fieldRefs read from `pod`; resource limits give GOMAXPROCS 1
    (two cores serve a whole fleet)."""
    fields = {"metadata.name": pod["metadata"]["name"],
              "metadata.namespace": pod["metadata"].get("namespace", NAMESPACE),
              "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
              "spec.nodeName": pod["spec"].get("nodeName", ""),
              "status.podIP": "127.0.0.1"}
    env = {"PATH": "/usr/bin:/bin", "GOMAXPROCS": "1"}
    for item in container.get("env") or []:
        source = item.get("valueFrom")
        if source is None:
            env[item["name"]] = item.get("value", "")
        elif "fieldRef" in source:
            env[item["name"]] = fields.get(source["fieldRef"].get("fieldPath"), "")
    env["KUBECONFIG"] = str(kubeconfig)
    return env


def impersonating_kubeconfig(admin_kubeconfig: Path, account: str,
                             namespace: str = NAMESPACE) -> dict:
    """The admin kubeconfig, acting as the service account with its groups."""
    config = json.loads(admin_kubeconfig.read_text())
    for user in config["users"]:
        user["user"]["as"] = f"system:serviceaccount:{namespace}:{account}"
        user["user"]["as-groups"] = ["system:serviceaccounts",
                                     f"system:serviceaccounts:{namespace}",
                                     "system:authenticated"]
    return config


def stop_child(proc: subprocess.Popen, grace: float = 5) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds, of a process this one started."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class IstiodProcess:
    """pilot-discovery for one istiod Deployment of one cluster."""

    revision: str
    address: str
    workdir: Path
    proc: subprocess.Popen = None
    _ready: tuple = (0.0, False)  # (when it was asked, the answer): asked at most once a second

    @property
    def log_path(self) -> Path:
        return self.workdir / "pilot-discovery.log"

    def start(self, binary: Path, container: dict, pod: dict, admin_kubeconfig: Path) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.workdir / "kubeconfig"
        account = pod["spec"].get("serviceAccountName", "default")
        kubeconfig.write_text(json.dumps(impersonating_kubeconfig(admin_kubeconfig, account)))
        kubeconfig.chmod(0o600)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command_line(binary, container, self.address, kubeconfig),
                env=environment(container, pod, kubeconfig), cwd=self.workdir,
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """istiod's own readiness (`/ready` on its HTTP port, the pod's readinessProbe)."""
        if not self.alive():
            return False
        asked, answer = self._ready
        if time.monotonic() - asked < 1:
            return answer
        try:
            with urllib.request.urlopen(f"http://{self.address}:{HTTP_PORT}/ready",
                                        timeout=2) as reply:
                answer = reply.status == 200
        except OSError:
            answer = False
        self._ready = (time.monotonic(), answer)
        return answer

    def starting(self) -> bool:
        return self.alive() and not self.ready()

    def stop(self, grace: float = 5) -> None:
        stop_child(self.proc, grace)
