# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Holding the run lock while a run writes: taken at the first write (or explicitly by the
run_lock module), renewed by a small process that lives as long as the ansible-playbook process
that started the run, and checked before every write.

A killed run stops writing: ansible-core runs each task in a worker of its own session, which
finishes the task in flight even after the ansible-playbook process is gone. So every module
that runs under the lock watches that process and exits (with its helm children) as soon as it
is gone, and the renewer stops renewing, so the lock goes stale and then expires.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field

from ansible_collections.meshfleet.istio.plugins.module_utils.kube_exceptions import (
    ConflictError,
    NotFoundError,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.run_lock import (
    DEFAULT_TTL,
    LEASE_API,
    LEASE_NAME,
    LEASE_NAMESPACE,
    LockError,
    decide_acquire,
    holder_of,
    lease_body,
    lock_state,
    released_body,
    renew_interval,
    renewed_body,
)

CONTROLLER_NAMES = ("ansible-playbook", "ansible")
# Seconds between two reads of the Lease before writes of one module.
CHECK_EVERY = 2.0


class RunGone(LockError):
    """The ansible-playbook process that started this task is gone."""


# ---------------------------------------------------------------- the controller process

def _stat(pid):
    """(parent pid, start time, state) of a process, None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (IOError, OSError, IndexError):
        return None
    return int(fields[1]), fields[19], fields[0]


def _is_controller(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            argv = handle.read().split(b"\0")
    except (IOError, OSError):
        return False
    names = [os.path.basename(arg.decode("utf-8", "replace")) for arg in argv[:2]]
    return any(name in CONTROLLER_NAMES for name in names)


def controller_process():
    """The ansible-playbook (or ad-hoc ansible) process this module runs under, as (pid, start
    time): the topmost such ancestor, since ansible-core's workers carry the same command line.
    Without /proc, or when there is none, the module's parent."""
    found = None
    pid = os.getppid()
    while pid > 1:
        stat = _stat(pid)
        if stat is None:
            break
        if _is_controller(pid):
            found = (pid, stat[1])
        pid = stat[0]
    if found:
        return found
    stat = _stat(os.getppid())
    return os.getppid(), stat[1] if stat else None


def process_alive(process):
    pid, started = process
    if started is None:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    stat = _stat(pid)
    return stat is not None and stat[1] == started and stat[2] not in ("Z", "X")


def _kill_children():
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat and stat[0] == me:
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass


def stop_with_controller(process, poll=1.0):
    """Exit this module (and the helm it runs) as soon as the controller process is gone."""
    def watch():
        while process_alive(process):
            time.sleep(poll)
        _kill_children()
        os._exit(1)

    thread = threading.Thread(target=watch, name="meshfleet-controller-watch")
    thread.daemon = True
    thread.start()


# ---------------------------------------------------------------- the renewer

def _renew_until_gone(api, holder, interval, controller):
    api.close()  # the module's connection stays the module's
    while True:
        time.sleep(interval)
        if not process_alive(controller):
            return
        try:
            lease = api.get(LEASE_API, "Lease", LEASE_NAME, LEASE_NAMESPACE)
        except NotFoundError:
            return
        except Exception:  # pylint: disable=broad-except
            continue
        if holder_of(lease) != holder:
            return
        try:
            api.replace(renewed_body(lease), LEASE_NAMESPACE)
        except Exception:  # pylint: disable=broad-except
            continue


def spawn_renewer(api, holder, ttl, controller):
    """A detached process renewing the Lease every renew_interval(ttl) seconds while the
    controller lives and the Lease names `holder`; it holds its connection settings in memory,
    since it outlives the module."""
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(devnull, stream)
        _renew_until_gone(api, holder, renew_interval(ttl), controller)
    finally:
        os._exit(0)


# ---------------------------------------------------------------- the keeper

@dataclass(eq=False)
class LockKeeper:
    """This run's hold on one cluster's lock, reached through a kube_api.KubeApi."""

    api: object
    holder: str
    ttl: int
    break_holder: str | None = None
    force_break_holder: str | None = None
    fence: str | None = None
    controller: tuple | None = None
    _checked: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self):
        self.controller = self.controller or controller_process()

    @classmethod
    def from_params(cls, api, spec):
        return cls(api, spec["holder"], spec.get("ttl") or DEFAULT_TTL, spec.get("break_holder"),
                   spec.get("force_break_holder"), spec.get("fence"))

    def read(self):
        try:
            return self.api.get(LEASE_API, "Lease", LEASE_NAME, LEASE_NAMESPACE)
        except NotFoundError:
            return None

    def _write(self, body, create=False):
        if create:
            return self.api.create(LEASE_API, "Lease", body, LEASE_NAMESPACE)
        return self.api.replace(body, LEASE_NAMESPACE)

    def acquire(self, check_mode=False):
        """Take, create or keep the lock: returns (action, previous holder). Raises LockHeld or
        LockMoved (run_lock.py) when this run may not hold it. A write that loses a race for
        the Lease (409) is decided again from a fresh read."""
        for attempt in range(3):
            lease = self.read()
            action = decide_acquire(lease, self.holder, self.break_holder,
                                    self.force_break_holder, self.fence)
            if check_mode:
                return action, holder_of(lease)
            try:
                self._apply(action, lease)
            except ConflictError:
                if attempt == 2:
                    raise
                continue
            self._checked = time.time()
            return action, holder_of(lease)

    def _apply(self, action, lease):
        if action == "create":
            self._write(lease_body(self.holder, self.ttl), create=True)
        elif action == "take":
            self._write(lease_body(self.holder, self.ttl, lease["metadata"]["resourceVersion"]))
        elif lock_state(lease)["state"] != "live":
            # Ours, but its renewer is not renewing it (it lives as long as the run's
            # ansible-playbook; renewals may have failed while the apiserver was away).
            self._write(renewed_body(lease))
        if action != "renew":
            spawn_renewer(self.api, self.holder, self.ttl,
                          self.controller)

    def before_write(self):
        """Called before every write of a module run under the lock."""
        if not process_alive(self.controller):
            raise RunGone("the ansible-playbook process that started this task (pid %d) is "
                          "gone: this run stops writing" % self.controller[0])
        if time.time() - self._checked >= CHECK_EVERY:
            self.acquire()

    def release(self, check_mode=False):
        """Give the lock back if this run holds it: returns the holder before. The renewer may
        renew it meanwhile (409): then read it again."""
        for attempt in range(3):
            lease = self.read()
            previous = holder_of(lease)
            if lease is None or previous != self.holder or check_mode:
                return previous
            try:
                self._write(released_body(lease))
            except ConflictError:
                if attempt == 2:
                    raise
                continue
            return previous
