"""Memory and idle CPU of real istiods in the local fleet (a separate command, not part of the
test suite; needs root and the cached builds, including both Istio releases' binaries):

    .venv/bin/python benchmarks/real_istiod.py [--clusters 8] [--settle 60] [--idle 60]

Starts a fleet `bench-istiod` with `--istiod real`, installs on every cluster the base chart and
two revisions (the default release and the previous one) the way the canary procedure does, and,
after `--settle` seconds, reports the RSS of every pilot-discovery process, each cluster's
control plane, and the whole fleet; then the CPU each pilot-discovery spends over `--idle`
seconds. The fleet is stopped at the end. Results go to stdout as Markdown.
"""

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fleet_start import MIB, cpu_seconds, fleet_pids, rss_bytes  # noqa: E402
from localfleet import charts, gobuild, versions  # noqa: E402
from localfleet.fleet import Fleet  # noqa: E402

RELEASES = (versions.ISTIO_DEFAULT, versions.ISTIO_PREVIOUS)


def helm(fleet, cluster, *args):
    subprocess.run([str(gobuild.binaries_dir() / "helm"), *args, "-n", "istio-system",
                    "--kubeconfig", str(fleet.kubeconfig), "--kube-context", cluster],
                   check=True, capture_output=True, text=True)


def chart(release, name):
    return str(charts.chart_dir(release) / f"{name}-{release}.tgz")


def install(fleet, cluster):
    default = RELEASES[0].replace(".", "-")
    helm(fleet, cluster, "install", "istio-base", chart(RELEASES[0], "base"),
         "--create-namespace", "--set", f"defaultRevision={default}")
    for release in RELEASES:
        revision = release.replace(".", "-")
        helm(fleet, cluster, "install", f"istiod-{revision}", chart(release, "istiod"),
             "--set", f"revision={revision}", "--wait", "--timeout", "10m")


def pilot_discovery_pids(fleet) -> dict:
    """(cluster, work dir name) -> pid of every pilot-discovery of the fleet."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            exe = os.readlink(entry / "exe")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if exe.endswith("/pilot-discovery") and fleet.dir in cwd.parents:
            found[(cwd.parent.parent.name, cwd.name)] = int(entry.name)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--settle", type=int, default=60)
    parser.add_argument("--idle", type=int, default=60)
    args = parser.parse_args()
    fleet = Fleet("bench-istiod")
    fleet.down()
    fleet = Fleet("bench-istiod")
    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    started = time.monotonic()
    fleet.up(args.clusters, real_istiod=True)
    try:
        up = time.monotonic() - started
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda c: install(fleet, c.spec.name), fleet.clusters))
        installed = time.monotonic() - started - up
        time.sleep(args.settle)
        report(fleet, args, up, installed)
    finally:
        fleet.down()
    return 0


def report(fleet, args, up, installed):
    istiods = pilot_discovery_pids(fleet)
    control = fleet_pids(fleet)
    print(f"\n{args.clusters} clusters, {len(istiods)} pilot-discovery processes; fleet up in "
          f"{up:.0f} s, {len(RELEASES)} revisions installed everywhere in {installed:.0f} s\n")
    print("| cluster | pilot-discovery RSS (MiB, each) | control plane RSS (MiB) |")
    print("|---|---|---|")
    for cluster in fleet.clusters:
        name = cluster.spec.name
        mine = sorted(rss_bytes(pid) // MIB for (c, _), pid in istiods.items() if c == name)
        plane = sum(rss_bytes(pid) for (c, _), pid in control.items() if c == name) // MIB
        print(f"| {name} | {', '.join(map(str, mine))} | {plane} |")
    total = (sum(rss_bytes(p) for p in istiods.values())
             + sum(rss_bytes(p) for p in control.values() if p))
    print(f"\nwhole fleet RSS: {total / MIB / 1024:.2f} GiB")
    before = {key: cpu_seconds(pid) for key, pid in istiods.items()}
    time.sleep(args.idle)
    spent = sorted((cpu_seconds(pid) - before[key]) / args.idle * 100
                   for key, pid in istiods.items())
    print(f"idle CPU per pilot-discovery over {args.idle} s: median {spent[len(spent) // 2]:.1f} %"
          f", max {spent[-1]:.1f} % of one core; all together {sum(spent):.1f} %")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
