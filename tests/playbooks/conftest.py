"""Run the collection's playbooks against the local fleet, as a user would."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from localfleet import audit, gobuild

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "build" / "pytest-collections"
ADMIN = "meshfleet-admin"
RECAP = re.compile(r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
                   r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)", re.M)


@dataclass
class PlaybookRun:
    rc: int
    output: str

    def recap(self):
        return {m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
                for m in RECAP.finditer(self.output)}

    def changed(self):
        return {host: r["changed"] for host, r in self.recap().items()}

    def failed_hosts(self):
        return sorted(h for h, r in self.recap().items() if r["failed"] or r["unreachable"])


def collections_path():
    link = COLLECTIONS / "ansible_collections" / "meshfleet" / "istio"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        with contextlib.suppress(FileExistsError):  # another xdist worker made it meanwhile
            link.symlink_to(REPO)
    return str(COLLECTIONS)


@pytest.fixture(scope="session")
def playbook_invocation(fleet, tmp_path_factory):
    """The command line and environment of ansible-playbook <name> (or a playbook file given as
    a Path) against the fleet's inventory plus the local fleet spec, and the directory to run it
    in."""
    workdir = tmp_path_factory.mktemp("ansible")

    def invocation(playbook, extra_vars=None, check=False, diff=False, host_vars=None, limit=None,
                   inventory=None, extra_args=()):
        inventories = [str(inventory or fleet.inventory), str(REPO / "inventories" / "localfleet")]
        if host_vars:
            hv_dir = workdir / "extra" / "host_vars"
            hv_dir.mkdir(parents=True, exist_ok=True)
            for existing in hv_dir.glob("*.yml"):
                existing.unlink()
            for host, values in host_vars.items():
                (hv_dir / f"{host}.yml").write_text(yaml.safe_dump(values))
            (workdir / "extra" / "hosts.yml").write_text("all: {}\n")
            inventories.append(str(workdir / "extra"))
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"),
               str(playbook) if isinstance(playbook, Path) else f"meshfleet.istio.{playbook}"]
        for inv in inventories:
            cmd += ["-i", inv]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if limit:
            cmd += ["--limit", limit]
        cmd += list(extra_args)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(),
                   PATH=f"{gobuild.binaries_dir()}{os.pathsep}{os.environ['PATH']}",
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default",
                   ANSIBLE_LOCAL_TEMP=str(workdir / "tmp"), ANSIBLE_RETRY_FILES_ENABLED="0")
        return cmd, env, workdir

    return invocation


@pytest.fixture(scope="session")
def run_playbook(playbook_invocation):
    """ansible-playbook <name> against the fleet's inventory plus the local fleet spec."""

    def run(playbook, timeout=None, **options):
        cmd, env, workdir = playbook_invocation(playbook, **options)
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                              check=False, timeout=timeout)
        return PlaybookRun(proc.returncode, proc.stdout + proc.stderr)

    return run


class BackgroundPlaybook:
    """An ansible-playbook run in the background, in a session of its own, its output in a file."""

    def __init__(self, cmd, env, workdir):
        handle, path = tempfile.mkstemp(prefix="playbook-", suffix=".log", dir=workdir)
        self.log = Path(path)
        with os.fdopen(handle, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        return self.log.read_text(errors="replace")

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        """The finished run; a run still going after `timeout` seconds is killed and fails."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"ansible-playbook still running after {timeout}s:\n"
                                 f"{self.output()[-5000:]}") from None
        return PlaybookRun(self.proc.returncode, self.output())

    def kill(self):
        """SIGKILL ansible-playbook and everything it started, as a crash of the controller would.

        Its process group is not enough: ansible's workers run in sessions of their own, and the
        modules and helm binaries under them would carry on. Every descendant is stopped first
        (so none can fork a new one unseen), then all are killed. Returns the command lines of
        the processes killed, by pid."""
        stopped = {}
        found = [self.proc.pid]
        while found:
            for pid in found:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                stopped[pid] = command_line(pid)
            found = [pid for pid in children_of(stopped) if pid not in stopped]
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        return stopped


    def kill_group(self):
        """SIGKILL ansible-playbook's process group only, as `kill -KILL -<pgid>` would: the
        workers, in sessions of their own, and the modules under them live on."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


def command_line(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def children_of(parents):
    """Pids of the running processes whose parent is one of `parents` (read from /proc)."""
    parents = set(parents)
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in parents:
            children.append(int(stat.parent.name))
    return children


@pytest.fixture(scope="session")
def start_playbook(playbook_invocation):
    """ansible-playbook <name> as run_playbook runs it, started in the background."""

    def start(playbook, **options):
        return BackgroundPlaybook(*playbook_invocation(playbook, **options))

    return start


class WriteCounter:
    """Write requests by the admin identity at every cluster's apiserver, since a mark."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.marks = {c.spec.name: audit.mark(c.audit_log) for c in fleet.clusters}

    def events(self):
        """The audit events of those writes, by cluster."""
        return {c.spec.name: audit.writes(c.audit_log, self.marks[c.spec.name], user=ADMIN)
                for c in self.fleet.clusters}

    def writes(self):
        return {name: [audit.describe(e) for e in events] for name, events in self.events().items()}


@pytest.fixture(scope="session")
def api(k8s):
    """An API client for cluster1 (the first cluster), as the admin identity."""
    return k8s


@pytest.fixture
def write_counter(fleet):
    return lambda: WriteCounter(fleet)
