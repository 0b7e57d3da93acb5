"""What benchmarks/install.py and benchmarks/upgrade.py share: fresh local fleets, and one
ansible-playbook run measured from the outside.

A measured run reports:
- wall time (time.monotonic around the subprocess);
- controller CPU: the delta of getrusage(RUSAGE_CHILDREN) user + sys around the subprocess,
  i.e. ansible-playbook and every descendant it (or its descendants) waited for: forked
  workers, module processes, helm. The fleets are started by a separate
  `python -m localfleet up` process, so none of their processes is our child;
- the CPU-seconds of the ansible-playbook process alone (the controller's main loop, which
  polls its workers), from /proc/<pid>/stat sampled every 0.2 s (the last sample);
- peak memory: /proc sampled every 0.2 s; the largest sum of VmRSS over the whole process tree
  under ansible-playbook ("tree"), and the largest single process ("largest", what
  /usr/bin/time -v calls maximum resident set size). Pages shared between forks are counted
  once per process in the sum, so the tree figure overstates the real footprint;
- write requests by meshfleet-admin at each cluster's apiserver (localfleet.audit, dry runs
  excluded), from audit-log marks taken just before the run.
"""

import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_start import cpu_seconds, rss_bytes  # noqa: E402
from localfleet import audit, gobuild  # noqa: E402
from localfleet.fleet import Fleet  # noqa: E402

ADMIN = "meshfleet-admin"
PYTHON = REPO / ".venv" / "bin" / "python"
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
WORKDIR = REPO / "build" / "benchmarks"
MIB = 1024 * 1024


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def localfleet(fleet: str, *args) -> None:
    subprocess.run([str(PYTHON), "-m", "localfleet", "--fleet", fleet, *args], cwd=REPO,
                   check=True, stdout=subprocess.DEVNULL)


def fresh_fleet(name: str, clusters: int) -> Fleet:
    """A fleet of empty clusters: whatever ran under this name before is stopped first. Its
    istiods are the stand-in's unless MESHFLEET_BENCH_ISTIOD=real: the figures recorded before
    real istiods came are comparable, and the 2 cores are spent on what is measured."""
    localfleet(name, "down")
    localfleet(name, "up", "--clusters", str(clusters), "--istiod",
               os.environ.get("MESHFLEET_BENCH_ISTIOD", "standin"))
    return Fleet(name)


def collections_path() -> str:
    root = WORKDIR / "collections"
    link = root / "ansible_collections" / "meshfleet" / "istio"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO)
    return str(root)


def ansible_env(forks: int, extra: dict = None) -> dict:
    """The same settings for every playbook run: forks, no retry files, plain output."""
    tmp = WORKDIR / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(),
               ANSIBLE_CONFIG=str(Path(__file__).resolve().parent / "ansible.cfg"),
               ANSIBLE_FORKS=str(forks), ANSIBLE_LOCAL_TEMP=str(tmp),
               PATH=f"{gobuild.binaries_dir()}{os.pathsep}{os.environ['PATH']}")
    env.update(extra or {})
    return env


class TreeMemory(threading.Thread):
    """Peak RSS of a process tree, and the CPU-seconds of its root process alone (its last
    sample, up to 0.2 s before it exits), sampled from /proc."""

    def __init__(self, root_pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root_pid, interval
        self.peak_tree = self.peak_single = 0
        self.main_cpu = 0.0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.main_cpu = cpu_seconds(self.root)
            except OSError:
                pass
            sizes = [rss_or_zero(pid) for pid in descendants(self.root)]
            if sizes:
                self.peak_tree = max(self.peak_tree, sum(sizes))
                self.peak_single = max(self.peak_single, max(sizes))
            self.done.wait(self.interval)


def rss_or_zero(pid: int) -> int:
    try:
        return rss_bytes(pid)
    except OSError:
        return 0


def descendants(root: int) -> list:
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass
class Run:
    rc: int
    wall: float
    cpu: float
    peak_tree: int
    peak_single: int
    main_cpu: float
    writes: dict
    load_before: str
    output: str
    extra: dict = field(default_factory=dict)

    @property
    def total_writes(self) -> int:
        return sum(len(w) for w in self.writes.values())


def run_playbook(fleet: Fleet, playbook: str, forks: int, extra_vars: dict = None,
                 env: dict = None, log: Path = None) -> Run:
    """ansible-playbook <playbook> against the fleet's inventory plus inventories/localfleet,
    inside the fleet's network namespace, measured."""
    cmd = ["ip", "netns", "exec", fleet.netns, str(ANSIBLE_PLAYBOOK), playbook,
           "-i", str(fleet.inventory), "-i", str(REPO / "inventories" / "localfleet")]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    marks = {c.spec.name: audit.mark(c.audit_log) for c in fleet.clusters}
    load_before = load_average()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=WORKDIR, env=ansible_env(forks, env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    memory = TreeMemory(proc.pid)
    memory.start()
    output = proc.communicate()[0]
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    memory.done.set()
    memory.join()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    writes = {c.spec.name: [audit.describe(e) for e in
                            audit.writes(c.audit_log, marks[c.spec.name], user=ADMIN)]
              for c in fleet.clusters}
    if log:
        log.write_text(" ".join(cmd) + "\n\n" + output)
    return Run(proc.returncode, wall, cpu, memory.peak_tree, memory.peak_single,
               memory.main_cpu, writes, load_before, output)


def kubectl(fleet: Fleet, context: str, *args, stdin: str = None) -> str:
    cmd = ["ip", "netns", "exec", fleet.netns, str(gobuild.binaries_dir() / "kubectl"),
           "--kubeconfig", str(fleet.kubeconfig), "--context", context, *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=True).stdout


def mib(value: int) -> str:
    return f"{value / MIB:.0f}"
