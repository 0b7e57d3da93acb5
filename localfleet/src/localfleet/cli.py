"""Subcommands of `python -m localfleet`: build, charts, up, down, status, exec, stop, start,
audit, requests."""

import argparse
import json
import os
import sys
from pathlib import Path

from . import audit, audit_requests, charts, gobuild, netns, versions
from .fleet import DEFAULT_FLEET, Fleet, format_status
from .progress import FleetError


def parse(argv):
    parser = argparse.ArgumentParser(prog="localfleet", description=__doc__)
    parser.add_argument("--fleet", default=os.environ.get("MESHFLEET_FLEET", DEFAULT_FLEET),
                        help="fleet name (default: $MESHFLEET_FLEET or 'default')")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or find in the cache) the fleet's binaries")
    build.add_argument("components", nargs="*",
                       help=f"any of {', '.join(gobuild.RECIPES)} (default: "
                            f"{', '.join(gobuild.DEFAULT_BUILD)})")
    sub.add_parser("charts", help="package Istio's charts of every pinned build")
    up = sub.add_parser("up", help="start a fleet of clusters")
    up.add_argument("--clusters", type=int, default=1)
    up.add_argument("--istiod", choices=("real", "standin"), default="real",
                    help="real (default): pilot-discovery of each istiod Deployment's release "
                         "serves it; standin: the stand-in serves every revision "
                         "(docs/local-fleet.md)")
    up.add_argument("--kubernetes", choices=(versions.KUBERNETES,) + versions.KUBERNETES_OLDER,
                    default=versions.KUBERNETES,
                    help=f"the clusters' Kubernetes release (default {versions.KUBERNETES}; an "
                         "older one must be built first: build kubernetes-<release>)")
    up.add_argument("--reuse", action="store_true",
                    help="succeed without restarting when the same fleet is already up")
    sub.add_parser("down", help="stop the fleet and remove its state")
    status = sub.add_parser("status", help="show the fleet's clusters")
    status.add_argument("--json", action="store_true")
    run = sub.add_parser("exec", help="run a command inside the fleet's network namespace")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    for verb in ("stop", "start"):
        one = sub.add_parser(verb, help=f"{verb} one component of one cluster")
        one.add_argument("cluster")
        one.add_argument("component")
    writes = sub.add_parser("audit", help="count the write requests in a cluster's audit log "
                                          "(create, update, patch, delete; not dry runs)")
    writes.add_argument("cluster")
    writes.add_argument("--mark", action="store_true",
                        help="print a marker (the log's current end) to pass to --since later")
    writes.add_argument("--since", type=int, default=0, help="count only writes after this marker")
    writes.add_argument("--user", help="count only writes acting as this user")
    writes.add_argument("--list", action="store_true", help="print the writes, not their number")
    asked = sub.add_parser("requests", help="what an identity asked of the fleet's apiservers "
                                            "since a marker (docs/rbac.md)")
    asked.add_argument("action", choices=("mark", "list"),
                       help="mark: print every cluster's marker as JSON (save it to a file); "
                            "list: print the (apiGroup, resource, subresource, verb, "
                            "namespace) set of the identity's requests since --since")
    asked.add_argument("--since", type=Path,
                       help="a file written from 'requests mark' (default: the whole logs)")
    asked.add_argument("--user",
                       help="the identity as the audit log names it, for example "
                            "system:serviceaccount:meshfleet-system:meshfleet (default: anyone)")
    return parser.parse_args(argv)


def console_main():
    """The `localfleet` command an install of the package puts on PATH."""
    sys.exit(main(sys.argv[1:]))


def main(argv):
    args = parse(argv)
    try:
        return dispatch(args)
    except FleetError as err:
        print(f"localfleet: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("localfleet: interrupted", file=sys.stderr)
        return 130


def dispatch(args):
    if args.command == "build":
        unknown = sorted(set(args.components) - set(gobuild.RECIPES))
        if unknown:
            raise FleetError(f"unknown component(s) {', '.join(unknown)}: "
                             f"choose from {', '.join(gobuild.RECIPES)}")
        for name, directory in gobuild.build_all(args.components or None).items():
            print(f"{name}: {directory}")
        return 0
    if args.command == "charts":
        helm = gobuild.build_all(["helm"])["helm"] / "helm"
        for version, directory in charts.package_all(helm).items():
            print(f"istio {version}: {directory}")
        return 0
    fleet = Fleet(args.fleet)
    if args.command == "up":
        real = args.istiod == "real"
        if not (args.reuse and fleet.is_up(args.clusters, real, args.kubernetes)):
            fleet.up(args.clusters, real, args.kubernetes)
        print(format_status(fleet, fleet.status()))
    elif args.command == "down":
        fleet.down()
    elif args.command == "status":
        rows = fleet.status()
        print(json.dumps(rows, indent=2) if args.json else format_status(fleet, rows))
    elif args.command == "stop":
        fleet.stop_component(args.cluster, args.component)
    elif args.command == "start":
        fleet.start_component(args.cluster, args.component)
    elif args.command == "exec":
        return exec_in_fleet(fleet, args.argv)
    elif args.command == "audit":
        print_writes(fleet.cluster(args.cluster).audit_log, args)
    elif args.command == "requests":
        return requests_command(fleet, args)
    return 0


def requests_command(fleet: Fleet, args) -> int:
    if not fleet.clusters:
        raise FleetError(f"fleet {fleet.name} is not running")
    if args.action == "mark":
        print(json.dumps(audit_requests.mark_fleet(fleet)))
        return 0
    since = json.loads(args.since.read_text()) if args.since else {}
    found = audit_requests.fleet_requests(fleet, since, args.user)
    if not found:
        raise FleetError(f"no request by {args.user or 'anyone'} in the audit logs of fleet "
                         f"{fleet.name}" + (f" since the markers of {args.since}"
                                            if args.since else ""))
    print(audit_requests.table(found))
    return 0


def print_writes(log, args):
    if args.mark:
        print(audit.mark(log))
        return
    found = audit.writes(log, args.since, args.user)
    print("\n".join(audit.describe(e) for e in found) if args.list else len(found))


def exec_in_fleet(fleet: Fleet, argv):
    """Replace this process with `argv`, inside the namespace, with the fleet's kubeconfig."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise FleetError("exec needs a command, for example: exec -- kubectl get nodes")
    netns.enter(fleet.netns)
    os.environ.setdefault("KUBECONFIG", str(fleet.kubeconfig))
    os.environ["MESHFLEET_FLEET"] = fleet.name
    os.environ["PATH"] = f"{gobuild.binaries_dir()}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        raise FleetError(f"cannot run {argv[0]}: {err.strerror}") from err
