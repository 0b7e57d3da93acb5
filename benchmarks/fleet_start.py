"""Measure the local fleet (a separate command, not part of the test suite; needs root and the
cached builds):

    .venv/bin/python benchmarks/fleet_start.py [--sizes 1 3 8] [--settle 30] [--idle 60]

For each size it starts a fleet named `bench` from the cache (down first) and reports the
start-up time, then, after `--settle` seconds, the resident memory of each cluster (the sum of
the RSS of its five processes) and of the istiod stand-in. For the 3-cluster fleet it also
reports the fleet's idle CPU over `--idle` seconds, from /proc/<pid>/stat (utime + stime) of
all its processes. The fleet is stopped at the end. Results go to stdout as Markdown.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localfleet.cluster import COMPONENTS  # noqa: E402
from localfleet.fleet import Fleet  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def rss_bytes(pid) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def fleet_pids(fleet) -> dict:
    """(cluster or 'istiod-standin', component) -> pid."""
    pids = {(c.spec.name, comp): c.pids[comp] for c in fleet.clusters for comp in COMPONENTS}
    pids[("fleet", "istiod-standin")] = fleet.standin_pid
    return pids


def start(size: int) -> tuple:
    fleet = Fleet("bench")
    fleet.down()
    fleet = Fleet("bench")
    started = time.monotonic()
    fleet.up(size)
    return fleet, time.monotonic() - started


def memory_report(fleet) -> list:
    pids = fleet_pids(fleet)
    per_cluster = {c.spec.name: sum(rss_bytes(pids[(c.spec.name, comp)]) for comp in COMPONENTS)
                   for c in fleet.clusters}
    by_component = {comp: sum(rss_bytes(pids[(c.spec.name, comp)]) for c in fleet.clusters)
                    / len(fleet.clusters) for comp in COMPONENTS}
    standin = rss_bytes(fleet.standin_pid)
    total = sum(per_cluster.values()) + standin
    lines = [f"- RSS per cluster: min {min(per_cluster.values()) / MIB:.0f} MiB, "
             f"max {max(per_cluster.values()) / MIB:.0f} MiB; "
             f"istiod stand-in {standin / MIB:.0f} MiB; whole fleet {total / MIB:.0f} MiB",
             "- mean RSS per component: " + ", ".join(
                 f"{comp} {rss / MIB:.0f} MiB" for comp, rss in by_component.items())]
    return lines


def idle_cpu_report(fleet, seconds: float) -> list:
    pids = fleet_pids(fleet)
    before = {key: cpu_seconds(pid) for key, pid in pids.items()}
    time.sleep(seconds)
    used = {key: cpu_seconds(pid) - before[key] for key, pid in pids.items()}
    by_component = {}
    for (_, comp), value in used.items():
        by_component[comp] = by_component.get(comp, 0) + value
    return [f"- idle CPU over {seconds:.0f} s: {percent(sum(used.values()), seconds)} of one core",
            "- by component (all clusters): " + ", ".join(
                f"{comp} {percent(value, seconds)}"
                for comp, value in sorted(by_component.items()))]


def percent(cpu: float, wall: float) -> str:
    return f"{100 * cpu / wall:.1f}%"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 8])
    parser.add_argument("--settle", type=float, default=30)
    parser.add_argument("--idle", type=float, default=60)
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}, "
          f"{os.cpu_count()} cores")
    try:
        for size in args.sizes:
            fleet, seconds = start(size)
            print(f"\n### {size} cluster(s)\n\n- cached start (`up`): {seconds:.1f} s")
            time.sleep(args.settle)
            print("\n".join(memory_report(fleet)), flush=True)
            if size == 3:
                print("\n".join(idle_cpu_report(fleet, args.idle)), flush=True)
    finally:
        Fleet("bench").down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
