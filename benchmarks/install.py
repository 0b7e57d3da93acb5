"""Install benchmark: meshfleet's install playbook against a baseline of Istio's documented Helm
steps (benchmarks/baseline/install.yml), side by side in one run (a separate command, not part
of the test suite; needs root, the cached builds and the packaged charts):

    .venv/bin/python benchmarks/install.py [--sizes 1 3 8] [--forks 8] [--tools baseline meshfleet]

For each fleet size and tool it starts a fresh fleet of empty clusters named `bench<size>`
(down first), runs the tool's install (fresh), then runs it again (re-run), then, for meshfleet,
the re-run again with `meshfleet_skip_converged: false` (full re-run: every cluster converges
in full instead of ending after the comparison with its install record) and `status.yml` on the
converged fleet (status), then makes one drift per cluster and runs the
install once more (drift): cluster N gets drift N mod 4 of DRIFTS (a Helm value changed by
`helm upgrade --reuse-values --set`, the PeerAuthentication's mode flipped, the stable Service's
selector pointed at a revision that does not exist, the default tag's webhook deleted; the
baseline installs no tag, so it gets no fourth drift), and each drift is checked afterwards:
"repaired" counts the clusters whose drifted object is back as it was before the drift. All
with the same inventory (the fleet's inventory.yml plus inventories/localfleet), the same
ansible.cfg (benchmarks/ansible.cfg) and the same forks. Per run it reports wall time, controller
CPU-seconds per cluster, write requests by meshfleet-admin (all clusters), peak controller
memory and the load average just before the run (see harness.py for how each is measured).
Results go to stdout as Markdown; each run's output goes to build/benchmarks/logs/.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (REPO, WORKDIR, fresh_fleet, kubectl, load_average,  # noqa: E402
                     localfleet, mib, run_playbook)

from localfleet import charts, gobuild, versions  # noqa: E402

VERSION = versions.ISTIO_DEFAULT
REVISION = VERSION.replace(".", "-")

PLAYBOOKS = {"baseline": str(REPO / "benchmarks" / "baseline" / "install.yml"),
             "meshfleet": "meshfleet.istio.install"}
HEADER = ("| clusters | tool | run | load before | wall s | CPU s / cluster | main process CPU s | "
          "writes | changed | repaired | peak RSS tree MiB | largest process MiB |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")
STATUS = "meshfleet.istio.status"
GATEWAY = ("istio-gateways", "istio-ingressgateway")
TAG_WEBHOOK = "istio-revision-tag-default"


def changed_total(output: str) -> int:
    return sum(int(part.split("=")[1]) for line in output.splitlines() if " : ok=" in line
               for part in line.split() if part.startswith("changed="))


def same_writes(writes: dict) -> str:
    """The writes of the first cluster, and whether every other cluster got the same."""
    first, *others = writes
    same = all(writes[name] == writes[first] for name in others)
    return f"{first}{' (the same at every cluster)' if same else ''}: {writes[first]}"


def row(size, tool, label, run, repaired="") -> str:
    return (f"| {size} | {tool} | {label} | {run.load_before} | {run.wall:.1f} | "
            f"{run.cpu / size:.2f} | {run.main_cpu:.1f} | {run.total_writes} | "
            f"{changed_total(run.output)} | {repaired} | {mib(run.peak_tree)} | "
            f"{mib(run.peak_single)} |")


def helm(fleet, context, *args) -> str:
    cmd = ["ip", "netns", "exec", fleet.netns, str(gobuild.binaries_dir() / "helm"), *args,
           "--kubeconfig", str(fleet.kubeconfig), "--kube-context", context]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def gateway_release_values(fleet, context) -> dict:
    return json.loads(helm(fleet, context, "get", "values", f"{GATEWAY[1]}-{REVISION}", "-n",
                           GATEWAY[0], "-o", "json"))


def get_json(fleet, context, *args) -> dict:
    return json.loads(kubectl(fleet, context, *args, "-o", "json"))


# Each drift changes one thing and returns the check that it is back as it was before.

def drift_helm_value(fleet, context):
    before = gateway_release_values(fleet, context)
    chart = charts.chart_dir(VERSION) / f"gateway-{VERSION}.tgz"
    helm(fleet, context, "upgrade", f"{GATEWAY[1]}-{REVISION}", str(chart), "-n", GATEWAY[0],
         "--reuse-values", "--set", "replicaCount=5")
    return lambda: gateway_release_values(fleet, context) == before


def drift_peer_authentication(fleet, context):
    where = ("-n", "istio-config", "peerauthentication", "default")
    mode = get_json(fleet, context, "get", *where)["spec"]["mtls"]["mode"]
    other = "STRICT" if mode != "STRICT" else "PERMISSIVE"
    kubectl(fleet, context, "patch", *where, "--type", "merge",
            "-p", json.dumps({"spec": {"mtls": {"mode": other}}}))
    return lambda: get_json(fleet, context, "get", *where)["spec"]["mtls"]["mode"] == mode


def drift_service_selector(fleet, context):
    where = ("-n", GATEWAY[0], "service", GATEWAY[1])
    selector = get_json(fleet, context, "get", *where)["spec"]["selector"]
    kubectl(fleet, context, "patch", *where, "--type", "merge",
            "-p", '{"spec": {"selector": {"istio.io/rev": "drifted"}}}')
    return lambda: get_json(fleet, context, "get", *where)["spec"]["selector"] == selector


def drift_tag_webhook(fleet, context):
    kubectl(fleet, context, "delete", "mutatingwebhookconfiguration", TAG_WEBHOOK)
    return lambda: TAG_WEBHOOK in kubectl(fleet, context, "get",
                                          "mutatingwebhookconfigurations", "-o", "name")


DRIFTS = [drift_helm_value, drift_peer_authentication, drift_service_selector,
          drift_tag_webhook]


def drifts_for(fleet, tool) -> list:
    """(cluster context, drift) per cluster: drift N mod 4 for cluster N (the baseline has no
    tag webhook to lose, so it gets no fourth drift)."""
    kinds = DRIFTS if tool == "meshfleet" else DRIFTS[:3]
    return [(cluster.spec.name, kinds[index % len(kinds)])
            for index, cluster in enumerate(fleet.clusters)]


def run_with_drift(fleet, tool, forks, logs, size):
    checks = [(context, drift.__name__, drift(fleet, context))
              for context, drift in drifts_for(fleet, tool)]
    run = run_playbook(fleet, PLAYBOOKS[tool], forks,
                       log=logs / f"install-{size}-{tool}-drift.log")
    left = [f"{context}: {name}" for context, name, repaired in checks if not repaired()]
    if left:
        print(f"<!-- {tool} left drifted: {', '.join(left)} -->", flush=True)
    return run, f"{len(checks) - len(left)}/{len(checks)}"


def checked(run, tool, label, size, logs):
    if run.rc != 0:
        raise SystemExit(f"{tool} {label} on {size} cluster(s) failed (rc {run.rc}); see {logs}")
    return run


def bench(size: int, tool: str, forks: int, logs: Path) -> list:
    fleet = fresh_fleet(f"bench{size}", size)
    rows = []
    for label in ("fresh", "re-run"):
        run = checked(run_playbook(fleet, PLAYBOOKS[tool], forks,
                                   log=logs / f"install-{size}-{tool}-{label}.log"),
                      tool, label, size, logs)
        rows.append(row(size, tool, label, run))
        print(rows[-1], flush=True)
        if label == "re-run" and run.total_writes:
            print(f"<!-- {tool} re-run writes at {same_writes(run.writes)} -->", flush=True)
    if tool == "meshfleet":
        run = checked(run_playbook(fleet, PLAYBOOKS[tool], forks,
                                   extra_vars={"meshfleet_skip_converged": False},
                                   log=logs / f"install-{size}-{tool}-full-re-run.log"),
                      tool, "full re-run", size, logs)
        rows.append(row(size, tool, "full re-run", run))
        print(rows[-1], flush=True)
        run = checked(run_playbook(fleet, STATUS, forks,
                                   extra_vars={"meshfleet_report_dir": str(logs / "report")},
                                   log=logs / f"status-{size}.log"), tool, "status", size, logs)
        rows.append(row(size, tool, "status", run))
        print(rows[-1], flush=True)
    run, repaired = run_with_drift(fleet, tool, forks, logs, size)
    rows.append(row(size, tool, "drift", checked(run, tool, "drift", size, logs), repaired))
    print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 8, 16])
    parser.add_argument("--forks", type=int, default=8)
    parser.add_argument("--tools", nargs="+", default=list(PLAYBOOKS), choices=list(PLAYBOOKS))
    args = parser.parse_args(argv)
    logs = WORKDIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores; load average at start: {load_average()}; forks {args.forks}\n")
    print(HEADER, flush=True)
    try:
        for size in args.sizes:
            for tool in args.tools:
                bench(size, tool, args.forks, logs)
            localfleet(f"bench{size}", "down")
    finally:
        for size in args.sizes:
            localfleet(f"bench{size}", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
