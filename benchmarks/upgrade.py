"""Upgrade benchmark: meshfleet's canary upgrade 1.30.3 -> 1.31.0 of fleets carrying demo
workloads (a separate command, not part of the test suite; needs root, the cached builds and
the packaged charts):

    .venv/bin/python benchmarks/upgrade.py [--cases 1x4 3x4 8x4 3x2 3x10] [--forks 8]

A case `<clusters>x<deployments>` starts a fresh fleet `bench<clusters>`, installs 1.30.3 with
playbooks/install.yml, creates <deployments> Deployments of 2 replicas per cluster (spread over
two namespaces labelled istio.io/rev=prod-stable) and waits until every pod runs on 1-30-3.
Then it runs, measured (see harness.py),

    ansible-playbook meshfleet.istio.upgrade -e '{"meshfleet_target_version": "1.31.0",
        "meshfleet_prune_after": 0, "meshfleet_canary_hosts": "cluster1"}'

with the task_times callback (benchmarks/callback_plugins), which gives each task's wall time.
"Waiting" is the time spent in the tasks (role prefix ignored) that block on the clusters (helm installs with
--wait, the gateway replica wait, workload_migrate's restarts, the prune's helm uninstall
--wait); "orchestration" is the rest of the wall time. Afterwards it checks that every demo pod
runs on 1-31-0. Results go to stdout as Markdown; logs to build/benchmarks/logs/.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (REPO, WORKDIR, fresh_fleet, kubectl, load_average, localfleet,  # noqa: E402
                     mib, run_playbook)

OLD, NEW = "1-30-3", "1-31-0"
NAMESPACES = ("demo-a", "demo-b")
REPLICAS = 2
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_prune_after": 0,
           "meshfleet_canary_hosts": "cluster1"}
WAITING_TASKS = ("Install istiod as revision", "Install each gateway of revision",
                 "Wait until each gateway runs its minimum replicas",
                 "Move the canary namespaces and gate on their health",
                 "Restart the workloads onto the new revision",
                 "Prune the old revisions nothing uses any more")
CALLBACKS = {"ANSIBLE_CALLBACK_PLUGINS": str(REPO / "benchmarks" / "callback_plugins"),
             "ANSIBLE_CALLBACKS_ENABLED": "task_times"}
HEADER = ("| clusters | Deployments / cluster | load before | wall s | waiting s | "
          "orchestration s | CPU s / cluster | workload restarts (sum of their s) | writes | "
          "peak RSS tree MiB |\n|---|---|---|---|---|---|---|---|---|---|")


def demo_manifest(deployments: int) -> str:
    docs = [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": ns, "labels": {"istio.io/rev": "prod-stable"}}}
            for ns in NAMESPACES]
    for index in range(deployments):
        name = f"app{index}"
        labels = {"app": name}
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": name, "namespace": NAMESPACES[index % len(NAMESPACES)]},
                     "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels}, "spec": {
                                  "containers": [{"name": name,
                                                  "image": f"example.invalid/{name}:1"}]}}}})
    return yaml.safe_dump_all(docs)


def demo_pods(fleet, context: str) -> list:
    pods = []
    for ns in NAMESPACES:
        pods += json.loads(kubectl(fleet, context, "get", "pods", "-n", ns, "-o", "json"))["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready_on(pod: dict, revision: str) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return ((pod["metadata"].get("annotations") or {}).get("istio.io/rev") == revision
            and conditions.get("Ready") == "True")


def wait_for_demo(fleet, deployments: int, revision: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    for cluster in fleet.clusters:
        while True:
            pods = demo_pods(fleet, cluster.spec.name)
            if len(pods) == deployments * REPLICAS and all(ready_on(p, revision) for p in pods):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{cluster.spec.name}: demo pods not all Ready on {revision}")
            time.sleep(2)


def split(times: dict) -> tuple:
    waiting = sum(t["seconds"] for t in times["tasks"]
                  if t["name"].split(" : ")[-1].startswith(WAITING_TASKS))
    restarts = times["workloads"]
    return waiting, len(restarts), sum(w.get("duration", 0) for w in restarts)


def bench(size: int, deployments: int, forks: int, logs: Path) -> str:
    fleet = fresh_fleet(f"bench{size}", size)
    tag = f"{size}x{deployments}"
    setup = run_playbook(fleet, "meshfleet.istio.install", forks,
                         extra_vars={"meshfleet_istio_version": "1.30.3"},
                         log=logs / f"upgrade-{tag}-setup.log")
    if setup.rc != 0:
        raise SystemExit(f"installing 1.30.3 on {size} cluster(s) failed; see {logs}")
    for cluster in fleet.clusters:
        kubectl(fleet, cluster.spec.name, "apply", "-f", "-", stdin=demo_manifest(deployments))
    wait_for_demo(fleet, deployments, OLD)
    times_file = WORKDIR / f"task-times-{tag}.json"
    run = run_playbook(fleet, "meshfleet.istio.upgrade", forks, extra_vars=UPGRADE,
                       env=dict(CALLBACKS, BENCH_TASK_TIMES=str(times_file)),
                       log=logs / f"upgrade-{tag}.log")
    if run.rc != 0:
        raise SystemExit(f"upgrade of {tag} failed (rc {run.rc}); see {logs}")
    wait_for_demo(fleet, deployments, NEW, timeout=60)
    times = json.loads(times_file.read_text())
    (logs / f"upgrade-{tag}-task-times.json").write_text(json.dumps(times, indent=1))
    waiting, restarts, restart_seconds = split(times)
    return (f"| {size} | {deployments} | {run.load_before} | {run.wall:.1f} | {waiting:.1f} | "
            f"{run.wall - waiting:.1f} | {run.cpu / size:.2f} | {restarts} ({restart_seconds:.1f}) | "
            f"{run.total_writes} | {mib(run.peak_tree)} |")


def parse_case(text: str) -> tuple:
    size, deployments = text.split("x")
    return int(size), int(deployments)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=parse_case, nargs="+",
                        default=[(1, 4), (3, 4), (8, 4), (3, 2), (3, 10)])
    parser.add_argument("--forks", type=int, default=8)
    args = parser.parse_args(argv)
    logs = WORKDIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores; load average at start: {load_average()}; forks {args.forks}\n")
    print(HEADER, flush=True)
    try:
        for size, deployments in args.cases:
            print(bench(size, deployments, args.forks, logs), flush=True)
    finally:
        for size in sorted({size for size, _ in args.cases}):
            localfleet(f"bench{size}", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
