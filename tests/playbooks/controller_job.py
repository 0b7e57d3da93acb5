"""Playbook runs as AWX / Automation Controller runs a job template.

The controller hands ansible-runner a private data directory: the project checkout, the
inventory it generates as an inventory script (for a slice of a sliced job, only that slice's
hosts), the extra variables (survey answers, the variables the controller adds such as
awx_job_id, and those a credential injects) and the environment. A credential's file injector
writes the secret into a file under env/ and hands its path over; the job never sees the secret
any other way. The event stream and the artifacts are read back from the runner as the
controller reads them.
"""

import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner
import yaml

from localfleet import gobuild
from tests.playbooks.conftest import collections_path

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "extensions" / "controller" / "project"
FLEET_SPEC = REPO / "inventories" / "localfleet" / "group_vars" / "all.yml"


@dataclass
class ControllerInventory:
    """The inventory as the controller holds it: hosts with their variables, groups, and the
    inventory's own variables."""

    hostvars: dict
    groups: dict
    variables: dict = field(default_factory=dict)

    def sliced(self, number, count):
        """Slice `number` (1-based) of `count`, as the controller slices a job: the hosts in
        name order, every count-th one from the number-th on; groups keep only those hosts."""
        names = sorted(self.hostvars)[number - 1::count]
        return ControllerInventory(
            {n: self.hostvars[n] for n in names},
            {g: [h for h in hosts if h in names] for g, hosts in self.groups.items()},
            self.variables)

    def script(self):
        """The inventory script's output, the form in which the controller passes inventories."""
        data = {"all": {"children": sorted(self.groups) + ["ungrouped"], "vars": self.variables},
                "ungrouped": {"hosts": sorted(set(self.hostvars) - {
                    h for hosts in self.groups.values() for h in hosts})},
                "_meta": {"hostvars": self.hostvars}}
        for group, hosts in self.groups.items():
            data[group] = {"hosts": sorted(hosts), "vars": {}}
        return json.dumps(data, indent=1)


def fleet_inventory(fleet, waves):
    """One host per cluster of the local fleet, wave groups from `waves` ({group: [cluster]}),
    and the local fleet spec plus the canary contexts as inventory variables. The kubeconfig is
    not in it: the credential brings it."""
    hostvars = {c.spec.name: {"meshfleet_context": c.spec.name, "ansible_connection": "local",
                              "ansible_python_interpreter": sys.executable}
                for c in fleet.clusters}
    variables = yaml.safe_load(FLEET_SPEC.read_text())
    variables["meshfleet_canary_contexts"] = [hostvars[h]["meshfleet_context"]
                                              for h in waves.get("canary", [])]
    return ControllerInventory(hostvars, {g: list(h) for g, h in waves.items()}, variables)


@dataclass
class JobResult:
    job_id: int
    rc: int
    status: str
    events: list
    private_data_dir: Path
    artifacts: Path

    def stdout(self):
        return "\n".join(e.get("stdout", "") for e in self.events)

    def stats(self):
        """The playbook_on_stats event's data: counts per host and the set_stats artifacts."""
        found = [e["event_data"] for e in self.events if e.get("event") == "playbook_on_stats"]
        assert found, f"no playbook_on_stats event:\n{self.stdout()[-3000:]}"
        return found[-1]

    def host_events(self, task, host, event="runner_on_ok"):
        return [e["event_data"] for e in self.events if e.get("event") == event
                and e["event_data"].get("task") == task and e["event_data"].get("host") == host]

    def changed_hosts(self):
        return {h: n for h, n in self.stats().get("changed", {}).items() if n}

    def failed_hosts(self):
        stats = self.stats()
        return sorted(set(stats.get("failures", {})) | set(stats.get("dark", {})))


class ControllerJob:
    """One job (or one slice of a sliced job) started with ansible-runner in the background."""

    def __init__(self, workdir, job_id, playbook, inventory, kubeconfig, extra_vars=None,
                 limit=None, check=False):
        self.dir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=workdir))
        self.job_id = job_id
        (self.dir / "inventory").mkdir()
        hosts = self.dir / "inventory" / "hosts"
        hosts.write_text(f"#!{sys.executable}\nprint({inventory.script()!r})\n")
        hosts.chmod(0o700)
        credential_file = self._inject_kubeconfig(kubeconfig)
        extra = dict(extra_vars or {}, awx_job_id=job_id,
                     meshfleet_kubeconfig=str(credential_file))
        (self.dir / "env" / "extravars").write_text(yaml.safe_dump(extra))
        (self.dir / "env" / "envvars").write_text(yaml.safe_dump(self._environment(credential_file)))
        self.thread, self.runner = ansible_runner.run_async(
            private_data_dir=str(self.dir), project_dir=str(PROJECT), playbook=f"{playbook}.yml",
            ident=f"job{job_id}", limit=limit, cmdline="--check" if check else None,
            quiet=True)

    def _inject_kubeconfig(self, kubeconfig):
        """The credential type's file injector: the kubeconfig in a private file under env/."""
        env = self.dir / "env"
        env.mkdir()
        handle, path = tempfile.mkstemp(prefix="tmp", dir=env)
        with os.fdopen(handle, "w") as out:
            out.write(kubeconfig)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        return Path(path)

    def _environment(self, credential_file):
        return {"K8S_AUTH_KUBECONFIG": str(credential_file),
                "ANSIBLE_COLLECTIONS_PATH": collections_path(),
                "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                         str(gobuild.binaries_dir()), os.environ["PATH"]]),
                "ANSIBLE_LOCAL_TEMP": str(self.dir / "tmp"),
                "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}

    def wait(self, timeout=1800):
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.runner.canceled = True
            self.thread.join(60)
            raise AssertionError(f"job {self.job_id} still running after {timeout}s")
        return JobResult(self.job_id, self.runner.rc, self.runner.status, list(self.runner.events), self.dir,
                         Path(self.runner.config.artifact_dir))
