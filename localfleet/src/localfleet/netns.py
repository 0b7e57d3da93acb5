"""The fleet's own network namespace: only `lo` is up, and each cluster's Service CIDR and node
address are made locally deliverable there, so nothing the fleet dials can leave the machine."""

import os
import subprocess
from pathlib import Path

from .progress import FleetError

NETNS_DIR = Path("/run/netns")


def ns_name(fleet: str) -> str:
    return f"meshfleet-{fleet}"


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def _ip(*args, check=True):
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise FleetError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def create(name: str, local_cidrs=()) -> None:
    if os.geteuid() != 0:
        raise FleetError("creating a network namespace needs root (run as root or with sudo)")
    if not exists(name):
        _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")
    for cidr in local_cidrs:
        _ip("-n", name, "route", "replace", "local", cidr, "dev", "lo", "table", "local")


def delete(name: str) -> None:
    if exists(name):
        _ip("netns", "delete", name, check=False)


_ORIGINAL = {}  # the network namespace this process started in, kept open once it left it


def original_namespace_fd():
    """An open descriptor of the namespace this process was in before its first enter() (None
    while it never entered one): a child given it (pass_fds) can go back there with nsenter."""
    return _ORIGINAL.get("fd")


def enter(name: str) -> None:
    """Move the calling process (and every child it starts later) into the namespace."""
    if not exists(name):
        raise FleetError(f"network namespace {name} does not exist: is the fleet up?")
    if current_is(name):
        return
    if "fd" not in _ORIGINAL:
        _ORIGINAL["fd"] = os.open("/proc/self/ns/net", os.O_RDONLY)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        os.setns(fd, os.CLONE_NEWNET)
    finally:
        os.close(fd)


def current_is(name: str) -> bool:
    try:
        mine = os.stat("/proc/self/ns/net")
        theirs = os.stat(NETNS_DIR / name)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)
