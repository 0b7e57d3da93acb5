"""One local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK
as plain processes bound to 127.0.0.1 inside the fleet's network namespace."""

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import kubeconfig, pod_port_forwards, stages
from .pki import ClusterPKI
from .progress import FleetError

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
FAKE_NODES = 3
PORT_BASE = 20000
PORTS_PER_CLUSTER = 10
MAX_CLUSTERS = 32

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version", "/openapi*", "/api*"]
  verbs: ["get"]
- level: Metadata
"""


@dataclass(frozen=True)
class ClusterSpec:
    """Addresses of cluster number `index` (0-based): ports and CIDRs of its own."""

    name: str
    index: int

    def port(self, offset: int) -> int:
        return PORT_BASE + self.index * PORTS_PER_CLUSTER + offset

    @property
    def etcd_port(self):
        return self.port(0)

    @property
    def etcd_peer_port(self):
        return self.port(1)

    @property
    def apiserver_port(self):
        return self.port(2)

    @property
    def controller_manager_port(self):
        return self.port(3)

    @property
    def scheduler_port(self):
        return self.port(4)

    @property
    def kwok_port(self):
        return self.port(5)

    @property
    def service_cidr(self):
        return f"10.{96 + self.index}.0.0/16"

    @property
    def kubernetes_service_ip(self):
        return f"10.{96 + self.index}.0.1"

    @property
    def pod_cidr(self):
        return f"10.{64 + self.index}.0.0/16"

    @property
    def node_ip(self):
        return f"10.{64 + self.index}.255.254"

    @property
    def server(self):
        return f"https://127.0.0.1:{self.apiserver_port}"


class Cluster:
    """Files and processes of one cluster below `directory`."""

    def __init__(self, spec: ClusterSpec, directory: Path, bin_dir: Path):
        self.spec = spec
        self.dir = directory
        self.bin = bin_dir
        self.pki = ClusterPKI(directory / "pki")
        self.pids = {}

    # ------------------------------------------------------------ files

    def kubeconfig_path(self, identity: str) -> Path:
        return self.dir / f"kubeconfig-{identity}"

    def log_path(self, component: str) -> Path:
        return self.dir / "logs" / f"{component}.log"

    @property
    def audit_log(self) -> Path:
        return self.dir / "audit.log"

    @property
    def kwok_config(self) -> Path:
        return self.dir / "kwok.yaml"

    def prepare(self, real_istiod: bool = False) -> None:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self.pki.create(self.spec.kubernetes_service_ip)
        (self.dir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        stages.write(self.kwok_config, real_istiod)
        for identity in ("admin", "restricted", "controller-manager", "scheduler", "kwok"):
            kubeconfig.write(self.kubeconfig_path(identity), [self.kubeconfig_entry(identity)])

    def kubeconfig_entry(self, identity: str, context: str = None) -> dict:
        return kubeconfig.entry(
            context=context or self.spec.name, server=self.spec.server,
            ca=self.pki.path("ca.crt"), cert=self.pki.path(f"{identity}.crt"),
            key=self.pki.path(f"{identity}.key"), user=f"{self.spec.name}-{identity}")

    # ------------------------------------------------------------ command lines

    def command(self, component: str) -> list:
        """The command line that starts `component` of this cluster."""
        commands = {"etcd": self._etcd, "kube-apiserver": self._apiserver,
                    "kube-controller-manager": self._controller_manager,
                    "kube-scheduler": self._scheduler, "kwok": self._kwok}
        if component not in commands:
            raise ValueError(component)
        return commands[component]()

    def _etcd(self) -> list:
        spec = self.spec
        return [str(self.bin / "etcd"), f"--name={spec.name}",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{spec.etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{spec.etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{spec.etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{spec.etcd_peer_port}",
                f"--initial-cluster={spec.name}=http://127.0.0.1:{spec.etcd_peer_port}",
                "--unsafe-no-fsync", "--quota-backend-bytes=4294967296",
                "--log-level=warn"]

    def _apiserver(self) -> list:
        spec, pki = self.spec, self.pki
        return [str(self.bin / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{spec.etcd_port}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={spec.apiserver_port}",
                f"--cert-dir={self.dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.path('apiserver.crt')}",
                f"--tls-private-key-file={pki.path('apiserver.key')}",
                f"--client-ca-file={pki.path('ca.crt')}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.path('sa.pub')}",
                f"--service-account-signing-key-file={pki.path('sa.key')}",
                "--authorization-mode=Node,RBAC",
                f"--service-cluster-ip-range={spec.service_cidr}",
                "--endpoint-reconciler-type=none", "--allow-privileged=true",
                f"--audit-policy-file={self.dir / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}", "--audit-log-format=json",
                "--audit-log-maxbackup=0", "--audit-log-mode=blocking",
                # KWOK's nodes have an InternalIP and a Hostname that nothing resolves.
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false", "--v=0"]

    def _controller_manager(self) -> list:
        spec, pki = self.spec, self.pki
        kc = self.kubeconfig_path("controller-manager")
        return [str(self.bin / "kube-controller-manager"), f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1", f"--secure-port={spec.controller_manager_port}",
                f"--cert-dir={self.dir / 'controller-manager-certs'}",
                "--leader-elect=false", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.path('sa.key')}",
                f"--root-ca-file={pki.path('ca.crt')}",
                f"--cluster-signing-cert-file={pki.path('ca.crt')}",
                f"--cluster-signing-key-file={pki.path('ca.key')}",
                f"--service-cluster-ip-range={spec.service_cidr}",
                "--controllers=*,-nodeipam,-service-lb-controller,"
                "-cloud-node-lifecycle-controller", "--profiling=false",
                # KWOK's heartbeats can lag on a loaded 2-core machine; a flap would mark
                # every pod NotReady for good (KWOK sets Ready once), so nodes never expire.
                "--node-monitor-grace-period=24h"]

    def _scheduler(self) -> list:
        kc = self.kubeconfig_path("scheduler")
        return [str(self.bin / "kube-scheduler"), f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1", f"--secure-port={self.spec.scheduler_port}",
                f"--cert-dir={self.dir / 'scheduler-certs'}",
                "--leader-elect=false", "--profiling=false"]

    def _kwok(self) -> list:
        spec = self.spec
        return [str(self.bin / "kwok"), f"--kubeconfig={self.kubeconfig_path('kwok')}",
                f"--config={self.kwok_config}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={spec.pod_cidr}", f"--node-ip={spec.node_ip}",
                # The nodes' kubelet: where the apiserver sends port-forwards (pod_port_forwards).
                f"--server-address={spec.node_ip}:{spec.kwok_port}",
                f"--node-port={spec.kwok_port}", "--enable-crds=PortForward"]

    # ------------------------------------------------------------ processes

    def start(self, component: str) -> int:
        log = open(self.log_path(component), "ab")
        proc = subprocess.Popen(self.command(component), stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=self.dir)
        log.close()
        self.pids[component] = proc.pid
        return proc.pid

    def alive(self, component: str) -> bool:
        return process_is(self.pids.get(component), self.bin / component)

    def stop(self, component: str, grace: float = 3) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds: kube-apiserver drains in-flight
        requests for up to its request timeout (60s) before it exits on its own."""
        stop_process(self.pids.get(component), lambda: self.alive(component),
                     f"{self.spec.name}: {component}", grace)

    # ------------------------------------------------------------ readiness

    def wait_etcd(self, timeout=30):
        url = f"http://127.0.0.1:{self.spec.etcd_port}/health"
        self._wait(lambda: _http_ok(url), "etcd", timeout)

    def wait_apiserver(self, timeout=90):
        self._wait(lambda: self.api_get("/readyz") is not None, "kube-apiserver", timeout)

    def _wait(self, probe, component, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return
            if not self.alive(component):
                raise FleetError(f"{self.spec.name}: {component} exited during start-up; "
                                 f"see {self.log_path(component)}: {last_line(self.log_path(component))}")
            time.sleep(0.2)
        raise FleetError(f"{self.spec.name}: {component} not ready after {timeout}s; "
                         f"see {self.log_path(component)}")

    def ssl_context(self, identity="admin") -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.path("ca.crt")))
        ctx.load_cert_chain(str(self.pki.path(f"{identity}.crt")),
                            str(self.pki.path(f"{identity}.key")))
        return ctx

    def api_get(self, path: str, identity="admin"):
        """GET from the apiserver; the decoded body, or None when it does not answer 200."""
        try:
            with urllib.request.urlopen(self.spec.server + path, timeout=5,
                                        context=self.ssl_context(identity)) as resp:
                body = resp.read()
        except (urllib.error.URLError, OSError):
            return None
        try:
            return json.loads(body)
        except ValueError:
            return body.decode()

    def kubectl(self, *args, stdin=None, identity="admin") -> str:
        proc = subprocess.run([str(self.bin / "kubectl"),
                               f"--kubeconfig={self.kubeconfig_path(identity)}", *args],
                              input=stdin, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FleetError(f"{self.spec.name}: kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def install_kwok_crds(self) -> None:
        """KWOK's PortForward CRD, which KWOK watches (`--enable-crds`) from its start."""
        crd = pod_port_forwards.port_forward_crd()
        self.kubectl("apply", "--server-side", "-f", str(crd))
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                     "crd/portforwards.kwok.x-k8s.io")

    def create_fake_nodes(self) -> None:
        nodes = [fake_node(f"kwok-node-{i + 1}", f"zone-{'abc'[i % 3]}") for i in range(FAKE_NODES)]
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                          "items": nodes}))

    def ready_nodes(self) -> int:
        nodes = self.api_get("/api/v1/nodes") or {}
        return sum(1 for n in nodes.get("items", [])
                   if any(c["type"] == "Ready" and c["status"] == "True"
                          for c in n.get("status", {}).get("conditions", [])))

    def wait_nodes(self, timeout=60):
        self._wait(lambda: self.ready_nodes() >= FAKE_NODES, "kwok", timeout)

    def wait_default_serviceaccount(self, timeout=60):
        self._wait(lambda: self.api_get("/api/v1/namespaces/default/serviceaccounts/default")
                   is not None, "kube-controller-manager", timeout)


def fake_node(name: str, zone: str) -> dict:
    resources = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok",
                       "topology.kubernetes.io/zone": zone},
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }


def stop_process(pid, alive, what: str, grace: float = 3) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; `alive()` tells whether it still runs."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        if not alive():
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and alive():
            time.sleep(0.05)
    if alive():
        raise FleetError(f"{what} (pid {pid}) did not exit")


def process_is(pid, binary: Path) -> bool:
    """True when `pid` is alive and runs `binary` (a recycled pid is not ours)."""
    if not pid:
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        _reap(pid)
        return False
    return Path(exe).resolve() == Path(binary).resolve()


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""
