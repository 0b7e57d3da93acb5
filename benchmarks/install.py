"""Install benchmark: meshfleet's install playbook against a baseline of Istio's documented Helm
steps (benchmarks/baseline/install.yml), side by side in one run (a separate command, not part
of the test suite; needs root, the cached builds and the packaged charts):

    .venv/bin/python benchmarks/install.py [--sizes 1 3 8] [--forks 8] [--tools baseline meshfleet]

For each fleet size and tool it starts a fresh fleet of empty clusters named `bench<size>`
(down first), runs the tool's install (fresh), then runs it again (re-run), with the same
inventory (the fleet's inventory.yml plus inventories/localfleet), the same ansible.cfg
(benchmarks/ansible.cfg) and the same forks. Per run it reports wall time, controller
CPU-seconds per cluster, write requests by meshfleet-admin (all clusters), peak controller
memory and the load average just before the run (see harness.py for how each is measured).
Results go to stdout as Markdown; each run's output goes to build/benchmarks/logs/.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (REPO, WORKDIR, fresh_fleet, load_average, localfleet, mib,  # noqa: E402
                     run_playbook)

PLAYBOOKS = {"baseline": str(REPO / "benchmarks" / "baseline" / "install.yml"),
             "meshfleet": "meshfleet.istio.install"}
HEADER = ("| clusters | tool | run | load before | wall s | CPU s / cluster | main process CPU s | "
          "writes | changed | peak RSS tree MiB | largest process MiB |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def changed_total(output: str) -> int:
    return sum(int(part.split("=")[1]) for line in output.splitlines() if " : ok=" in line
               for part in line.split() if part.startswith("changed="))


def same_writes(writes: dict) -> str:
    """The writes of the first cluster, and whether every other cluster got the same."""
    first, *others = writes
    same = all(writes[name] == writes[first] for name in others)
    return f"{first}{' (the same at every cluster)' if same else ''}: {writes[first]}"


def row(size, tool, label, run) -> str:
    return (f"| {size} | {tool} | {label} | {run.load_before} | {run.wall:.1f} | "
            f"{run.cpu / size:.2f} | {run.main_cpu:.1f} | {run.total_writes} | "
            f"{changed_total(run.output)} | {mib(run.peak_tree)} | {mib(run.peak_single)} |")


def bench(size: int, tool: str, forks: int, logs: Path) -> list:
    fleet = fresh_fleet(f"bench{size}", size)
    rows = []
    for label in ("fresh", "re-run"):
        run = run_playbook(fleet, PLAYBOOKS[tool], forks,
                           log=logs / f"install-{size}-{tool}-{label}.log")
        if run.rc != 0:
            raise SystemExit(f"{tool} {label} install on {size} cluster(s) failed (rc {run.rc}); "
                             f"see {logs}")
        rows.append(row(size, tool, label, run))
        print(rows[-1], flush=True)
        if label == "re-run" and run.total_writes:
            print(f"<!-- {tool} re-run writes at {same_writes(run.writes)} -->", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 8])
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
