"""A fleet of local clusters in one network namespace: up, down, status, and the files that
clients need (one kubeconfig with a context per cluster, an Ansible inventory)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import gobuild, kubeconfig, netns, paths, versions
from .cluster import (COMPONENTS, MAX_CLUSTERS, Cluster, ClusterSpec, last_line, process_is,
                      stop_process)
from .progress import FleetError, Step, say

DEFAULT_FLEET = "default"
STANDIN_MODULE = "localfleet.istiod_standin"


def cluster_names(count: int):
    return [f"cluster{i + 1}" for i in range(count)]


class Fleet:
    def __init__(self, name: str = DEFAULT_FLEET):
        if not name.replace("-", "").isalnum() or len(name) > 20:
            raise FleetError(f"fleet name {name!r}: use up to 20 letters, digits or dashes")
        self.name = name
        self.dir = paths.state_root() / name
        self.netns = netns.ns_name(name)
        self.clusters = []
        self.standin_pid = None
        self.real_istiod = False  # pilot-discovery per istiod Deployment, not the stand-in's
        self.kubernetes = versions.KUBERNETES
        self._load()

    # ------------------------------------------------------------ state

    @property
    def state_file(self) -> Path:
        return self.dir / "fleet.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yml"

    @property
    def standin_dir(self) -> Path:
        """The istiod stand-in's CA, serving certificates and log (standin.log)."""
        return self.dir / "istiod-standin"

    def _load(self) -> None:
        if not self.state_file.exists():
            return
        state = json.loads(self.state_file.read_text())
        bin_dir = Path(state["bin_dir"])
        for entry in state["clusters"]:
            cluster = Cluster(ClusterSpec(entry["name"], entry["index"]),
                              self.dir / entry["name"], bin_dir)
            cluster.pids = dict(entry["pids"])
            self.clusters.append(cluster)
        self.standin_pid = state.get("istiod_standin_pid")
        self.real_istiod = state.get("istiod") == "real"
        self.kubernetes = state.get("kubernetes", versions.KUBERNETES)

    def save(self) -> None:
        state = {"name": self.name, "netns": self.netns,
                 "bin_dir": str(self.clusters[0].bin) if self.clusters else "",
                 "clusters": [{"name": c.spec.name, "index": c.spec.index, "pids": c.pids}
                              for c in self.clusters],
                 "istiod_standin_pid": self.standin_pid,
                 "istiod": "real" if self.real_istiod else "standin",
                 "kubernetes": self.kubernetes}
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def cluster(self, name: str) -> Cluster:
        for cluster in self.clusters:
            if cluster.spec.name == name:
                return cluster
        known = ", ".join(c.spec.name for c in self.clusters) or "none"
        raise FleetError(f"fleet {self.name} has no cluster {name!r} (clusters: {known})")

    def is_up(self, count: int, real_istiod: bool = None, kubernetes: str = None) -> bool:
        """All components of exactly `count` clusters, and the istiod stand-in, are running,
        with the istiod kind and the Kubernetes release asked for (either, when None)."""
        return (len(self.clusters) == count and self.standin_alive()
                and real_istiod in (None, self.real_istiod)
                and kubernetes in (None, self.kubernetes)
                and len(self.running()) == count * len(COMPONENTS))

    def running(self):
        return [(c.spec.name, comp) for c in self.clusters for comp in COMPONENTS if c.alive(comp)]

    def standin_alive(self) -> bool:
        if not process_is(self.standin_pid, Path(sys.executable)):
            return False
        try:
            argv = Path(f"/proc/{self.standin_pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return STANDIN_MODULE.encode() in argv and self.name.encode() in argv

    # ------------------------------------------------------------ up

    def up(self, count: int, real_istiod: bool = False, kubernetes: str = None) -> None:
        if not 1 <= count <= MAX_CLUSTERS:
            raise FleetError(f"--clusters {count}: choose between 1 and {MAX_CLUSTERS}")
        alive = self.running() + (["istiod-standin"] if self.standin_alive() else [])
        if alive:
            raise FleetError(f"fleet {self.name} is already running ({len(alive)} processes in "
                             f"{len(self.clusters)} clusters): use 'status', or 'down' first")
        self._clean_stale()
        bin_dir = gobuild.fleet_bin_dir(kubernetes)
        missing = [b for b in ("etcd", "kube-apiserver", "kwok", "kubectl") if not (bin_dir / b).exists()]
        if missing:
            raise FleetError(f"binaries missing from {bin_dir}: {', '.join(missing)}; "
                             "run 'python -m localfleet build' first")
        self.clusters = [Cluster(ClusterSpec(n, i), self.dir / n, bin_dir)
                         for i, n in enumerate(cluster_names(count))]
        self.real_istiod = real_istiod
        self.kubernetes = kubernetes or versions.KUBERNETES
        try:
            with Step(f"starting fleet {self.name} ({count} clusters, Kubernetes "
                      f"{self.kubernetes})"):
                self._start()
        except BaseException:
            say("start-up failed: stopping what was started")
            self._stop_all()
            raise
        self._write_client_files()

    def _clean_stale(self) -> None:
        if netns.exists(self.netns):
            strangers = self._lingering_pids()
            if strangers:
                raise FleetError(f"network namespace {self.netns} still has processes not recorded "
                                 f"by this fleet (pids {', '.join(strangers)}): stop them, then "
                                 "run 'up' again")
        if self.dir.exists() or netns.exists(self.netns):
            say(f"removing stale state of fleet {self.name}")
        netns.delete(self.netns)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _lingering_pids(self, timeout: float = 10):
        """Processes left in the namespace; ones still exiting (after a crash or a kill) get
        `timeout` seconds to go."""
        deadline = time.monotonic() + timeout
        found = self._netns_pids()
        while found and time.monotonic() < deadline:
            time.sleep(0.2)
            found = self._netns_pids()
        return found

    def _netns_pids(self):
        """Processes in the fleet's namespace other than this one (`ip netns pids` would also
        list itself when this process is inside)."""
        target = os.stat(netns.NETNS_DIR / self.netns)
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or entry.name == str(os.getpid()):
                continue
            try:
                ns = os.stat(entry / "ns" / "net")
            except OSError:
                continue
            if (ns.st_dev, ns.st_ino) == (target.st_dev, target.st_ino):
                found.append(entry.name)
        return found

    def _start(self) -> None:
        netns.create(self.netns, [cidr for c in self.clusters
                                  for cidr in (c.spec.service_cidr, f"{c.spec.node_ip}/32")])
        netns.enter(self.netns)
        for cluster in self.clusters:
            cluster.prepare(self.real_istiod)
        self._start_component("etcd", lambda c: c.wait_etcd())
        self._start_component("kube-apiserver", lambda c: c.wait_apiserver())
        for cluster in self.clusters:
            cluster.install_kwok_crds()
        for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._start_component(component, None)
        for cluster in self.clusters:
            cluster.create_fake_nodes()
        for cluster in self.clusters:
            cluster.wait_nodes()
            cluster.wait_default_serviceaccount()
        self._start_standin()

    def _start_component(self, component: str, wait) -> None:
        for cluster in self.clusters:
            port = component_port(cluster.spec, component)
            address = cluster.spec.node_ip if component == "kwok" else "127.0.0.1"
            if port and port_in_use(port, address):
                raise FleetError(f"{cluster.spec.name}: port {port} for {component} is already in "
                                 f"use in network namespace {self.netns}")
            cluster.start(component)
            self.save()
        if wait:
            for cluster in self.clusters:
                wait(cluster)

    def _start_standin(self, timeout: float = 30) -> None:
        """Start the istiod stand-in and wait until it has its CA."""
        self.standin_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.standin_dir / "standin.log"
        with open(log_file, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", STANDIN_MODULE, "--fleet", self.name],
                                    stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=paths.REPO_ROOT)
        self.standin_pid = proc.pid
        self.save()
        deadline = time.monotonic() + timeout
        while not (self.standin_dir / "ca.crt").exists():
            if proc.poll() is not None:
                raise FleetError(f"the istiod stand-in exited with {proc.returncode} at start "
                                 f"(negative: killed by that signal); see {log_file}: "
                                 f"{last_line(log_file)}")
            if time.monotonic() > deadline:
                raise FleetError(f"the istiod stand-in wrote no CA within {timeout}s (pid "
                                 f"{proc.pid}, {'alive' if self.standin_alive() else 'not found'}"
                                 f"); see {log_file}: {last_line(log_file)}")
            time.sleep(0.1)

    def _write_client_files(self) -> None:
        entries = [c.kubeconfig_entry("admin") for c in self.clusters]
        entries += [c.kubeconfig_entry("restricted", f"{c.spec.name}-restricted")
                    for c in self.clusters]
        kubeconfig.write(self.kubeconfig, entries)
        self.inventory.write_text(inventory_yaml(self))

    # ------------------------------------------------------------ down

    def down(self) -> None:
        if not self.clusters and not netns.exists(self.netns):
            say(f"fleet {self.name} is not running")
            return
        with Step(f"stopping fleet {self.name}"):
            self._stop_all()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_all(self) -> None:
        stop_process(self.standin_pid, self.standin_alive, "istiod stand-in")
        for component in reversed(COMPONENTS):
            for cluster in self.clusters:
                cluster.stop(component)
        netns.delete(self.netns)

    # ------------------------------------------------------------ one component

    def stop_component(self, cluster: str, component: str) -> None:
        target = self.cluster(cluster)
        target.stop(_component(component))

    def start_component(self, cluster: str, component: str) -> None:
        target = self.cluster(cluster)
        component = _component(component)
        if target.alive(component):
            raise FleetError(f"{cluster}: {component} is already running")
        netns.enter(self.netns)
        target.start(component)
        self.save()
        if component == "etcd":
            target.wait_etcd()
        elif component == "kube-apiserver":
            target.wait_apiserver()

    # ------------------------------------------------------------ status

    def status(self) -> list:
        rows = []
        if self.clusters and netns.exists(self.netns):
            netns.enter(self.netns)
        for cluster in self.clusters:
            version = cluster.api_get("/version") if cluster.alive("kube-apiserver") else None
            rows.append({
                "cluster": cluster.spec.name,
                "server": cluster.spec.server,
                "kubernetes": version.get("gitVersion") if isinstance(version, dict) else "down",
                "ready_nodes": cluster.ready_nodes() if version else 0,
                "components": {comp: ("up" if cluster.alive(comp) else "down")
                               for comp in COMPONENTS},
            })
        return rows


def _component(name: str) -> str:
    aliases = {"apiserver": "kube-apiserver", "controller-manager": "kube-controller-manager",
               "scheduler": "kube-scheduler"}
    component = aliases.get(name, name)
    if component not in COMPONENTS:
        raise FleetError(f"unknown component {name!r}: choose from {', '.join(COMPONENTS)}")
    return component


def component_port(spec: ClusterSpec, component: str):
    return {"etcd": spec.etcd_port, "kube-apiserver": spec.apiserver_port,
            "kube-controller-manager": spec.controller_manager_port,
            "kube-scheduler": spec.scheduler_port, "kwok": spec.kwok_port}.get(component)


def port_in_use(port: int, address: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return True
    return False


def inventory_yaml(fleet: Fleet) -> str:
    lines = ["# Written by localfleet: one host per local cluster.", "all:", "  vars:",
             "    ansible_connection: local",
             "    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"",
             f"    meshfleet_kubeconfig: {fleet.kubeconfig}", "  children:", "    localfleet:",
             "      hosts:"]
    for cluster in fleet.clusters:
        lines += [f"        {cluster.spec.name}:", f"          meshfleet_context: {cluster.spec.name}"]
    # The first cluster is the canary wave, as upgrade.yml expects by default (group canary).
    if fleet.clusters:
        lines += ["    canary:", "      hosts:", f"        {fleet.clusters[0].spec.name}:"]
    return "\n".join(lines) + "\n"


def format_status(fleet: Fleet, rows: list) -> str:
    if not rows:
        return f"fleet {fleet.name}: not running"
    standin = "up" if fleet.standin_alive() else "down"
    out = [f"fleet {fleet.name} (network namespace {fleet.netns})",
           f"kubeconfig: {fleet.kubeconfig}", f"inventory:  {fleet.inventory}",
           f"istiod stand-in: {standin} (log {fleet.standin_dir / 'standin.log'}); "
           + ("real istiods: pilot-discovery per istiod Deployment (logs in "
              "clusterN/istiod/*/pilot-discovery.log)" if fleet.real_istiod
              else "it serves every revision"),
           f"{'CLUSTER':<10} {'SERVER':<24} {'KUBERNETES':<11} {'NODES':<6} COMPONENTS"]
    for row in rows:
        down = [c for c, s in row["components"].items() if s != "up"]
        comps = "all up" if not down else "down: " + ", ".join(down)
        out.append(f"{row['cluster']:<10} {row['server']:<24} {row['kubernetes']:<11} "
                   f"{row['ready_nodes']:<6} {comps}")
    return "\n".join(out)
