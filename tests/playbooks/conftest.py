"""Run the collection's playbooks against the local fleet, as a user would."""

import json
import os
import re
import subprocess
import sys
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
        link.symlink_to(REPO)
    return str(COLLECTIONS)


@pytest.fixture(scope="session")
def run_playbook(fleet, tmp_path_factory):
    """ansible-playbook <name> against the fleet's inventory plus the local fleet spec."""
    workdir = tmp_path_factory.mktemp("ansible")

    def run(playbook, extra_vars=None, check=False, diff=False, host_vars=None, limit=None,
            inventory=None):
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
               f"meshfleet.istio.{playbook}"]
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
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(),
                   PATH=f"{gobuild.binaries_dir()}{os.pathsep}{os.environ['PATH']}",
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default",
                   ANSIBLE_LOCAL_TEMP=str(workdir / "tmp"), ANSIBLE_RETRY_FILES_ENABLED="0")
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
        return PlaybookRun(proc.returncode, proc.stdout + proc.stderr)

    return run


class WriteCounter:
    """Write requests by the admin identity at every cluster's apiserver, since a mark."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.marks = {c.spec.name: audit.mark(c.audit_log) for c in fleet.clusters}

    def writes(self):
        return {c.spec.name: [audit.describe(e) for e in
                              audit.writes(c.audit_log, self.marks[c.spec.name], user=ADMIN)]
                for c in self.fleet.clusters}


@pytest.fixture
def write_counter(fleet):
    return lambda: WriteCounter(fleet)
