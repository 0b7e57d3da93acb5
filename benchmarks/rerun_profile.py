"""Where an install's controller CPU goes, a converged re-run's (default) or a fresh install's
(--fresh): per module, and the rest (ansible-playbook and its forked workers). A separate
command, like the other benchmarks:

    .venv/bin/python benchmarks/rerun_profile.py [--clusters 1] [--runs 3] [--tools meshfleet baseline] [--fresh]

For each tool: a fresh fleet `profile<clusters>`, the tool's install, then `--runs` re-runs
measured as benchmarks/harness.py measures them, and one more re-run whose modules run under
benchmarks/module_cpu.py (the interpreter of every module process for that run), which records
each module process's own CPU-seconds and those of the processes it waited for (helm). With
--fresh: `--runs` fresh installs, each on a fleet of its own, and one more, on another fresh
fleet, whose modules run under module_cpu.py. The table gives, per cluster, the plain runs'
total (median), each module's count and CPU, and the remainder: the total less all modules,
which is what ansible-playbook and its workers cost (templating, conditionals, argument-spec
validation, result handling).
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (REPO, WORKDIR, fresh_fleet, load_average, localfleet,  # noqa: E402
                     run_playbook)

PLAYBOOKS = {"baseline": str(REPO / "benchmarks" / "baseline" / "install.yml"),
             "meshfleet": "meshfleet.istio.install"}
WRAPPER = Path(__file__).resolve().parent / "module_cpu.py"


def module_cpu(log: Path) -> dict:
    """{module: [processes, CPU-seconds]} from module_cpu.py's log."""
    found = defaultdict(lambda: [0, 0.0])
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        found[entry["module"]][0] += 1
        found[entry["module"]][1] += entry["cpu"]
    return dict(found)


def installed_fleet(tool: str, clusters: int, logs: Path):
    fleet = fresh_fleet(f"profile{clusters}", clusters)
    first = run_playbook(fleet, PLAYBOOKS[tool], 8, log=logs / f"profile-{tool}-fresh.log")
    if first.rc != 0:
        raise SystemExit(f"{tool} install failed; see {logs}")
    return fleet


def profile(tool: str, clusters: int, runs: int, logs: Path, fresh: bool) -> list:
    if fresh:
        plain = [run_playbook(fresh_fleet(f"profile{clusters}", clusters), PLAYBOOKS[tool], 8,
                              log=logs / f"profile-{tool}-fresh-{n}.log") for n in range(runs)]
        fleet = fresh_fleet(f"profile{clusters}", clusters)
    else:
        fleet = installed_fleet(tool, clusters, logs)
        plain = [run_playbook(fleet, PLAYBOOKS[tool], 8,
                              log=logs / f"profile-{tool}-rerun-{n}.log") for n in range(runs)]
    what = "fresh install" if fresh else "re-run"
    log = logs / f"profile-{tool}-modules.jsonl"
    log.unlink(missing_ok=True)
    wrapped = run_playbook(fleet, PLAYBOOKS[tool], 8,
                           extra_vars={"ansible_python_interpreter": str(WRAPPER)},
                           env={"MESHFLEET_MODULE_CPU_LOG": str(log),
                                "MESHFLEET_MODULE_PYTHON": sys.executable},
                           log=logs / f"profile-{tool}-wrapped.log")
    if wrapped.rc != 0 or any(run.rc for run in plain):
        raise SystemExit(f"{tool} {what} failed; see {logs}")
    total = statistics.median(run.cpu for run in plain) / clusters
    modules = module_cpu(log)
    rows = [f"| {tool} | {what}, total (median of {runs}; loads before: "
            f"{'; '.join(run.load_before for run in plain)}) | | {total:.2f} |"]
    for name, (count, cpu) in sorted(modules.items(), key=lambda kv: -kv[1][1]):
        rows.append(f"| {tool} | module `{name}` | {count / clusters:g} | {cpu / clusters:.2f} |")
    in_modules = sum(cpu for _, cpu in modules.values()) / clusters
    rows.append(f"| {tool} | all modules | "
                f"{sum(count for count, _ in modules.values()) / clusters:g} | {in_modules:.2f} |")
    rows.append(f"| {tool} | the rest: ansible-playbook and its workers (total less modules) | | "
                f"{total - in_modules:.2f} |")
    localfleet(f"profile{clusters}", "down")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", nargs="+", default=["meshfleet", "baseline"],
                        choices=list(PLAYBOOKS))
    parser.add_argument("--fresh", action="store_true",
                        help="profile fresh installs instead of converged re-runs")
    args = parser.parse_args(argv)
    logs = WORKDIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"{args.clusters} cluster(s); load average at start: {load_average()}\n")
    print("| tool | what | processes / cluster | CPU s / cluster |\n|---|---|---|---|")
    try:
        for tool in args.tools:
            for row in profile(tool, args.clusters, args.runs, logs, args.fresh):
                print(row, flush=True)
    finally:
        localfleet(f"profile{args.clusters}", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
