#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_lock
short_description: Hold or release the lock that lets one meshfleet run change a cluster at a time
version_added: 0.1.0
description:
  - Keeps the Lease C(kube-system/meshfleet-run-lock) naming the run that changes the cluster.
    Acquiring fails with the holder's name, whether it is alive, and the way out when another
    run holds it, so overlapping scheduled runs stop before they write.
  - The holder renews the Lease every I(ttl)/6 seconds (20 at most) from a small process that
    lives as long as the C(ansible-playbook) process of the run. A lock whose renewals stopped
    for three intervals is stale; one not renewed for I(ttl) seconds has expired and is taken
    over by the next run. A stale lock is broken only when I(break_holder) names its holder, a
    live one only when I(force_break_holder) does.
  - Releasing keeps the Lease with no holder (its resourceVersion then tells a later run whether
    anyone held the cluster since that run read it, see I(fence)), and only when this run holds it.
  - Every meshfleet module also takes the lock at its first write when the playbook passes
    I(run_lock) (module defaults), so a run that has nothing to write writes no Lease either.
attributes:
  check_mode:
    support: full
    description: Reports whether the lock could be acquired or released; writes nothing.
  diff_mode:
    support: none
    description: The Lease is run bookkeeping, not mesh state.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
options:
  holder:
    description:
      - Identity of this run, unique per run (for example a timestamp, user and host).
      - Required unless I(run_lock) is given; each option left out here is taken from
        I(run_lock), which the playbooks pass to every meshfleet module.
    type: str
  state:
    description:
      - C(acquired) holds the lock, C(released) gives it back.
      - C(available) only checks that this run could take it (fails like C(acquired) would)
        and writes nothing.
    type: str
    choices: [acquired, released, available]
    default: acquired
  ttl:
    description:
      - Seconds without a renewal after which the lock has expired and any run takes it.
      - Defaults to I(run_lock)'s, else 120.
    type: int
  break_holder:
    description:
      - Take the lock from this exact holder when its lock is stale (renewals stopped) but has
        not expired yet.
      - Several holders (a list, or a comma-separated string) let one rerun of a fleet-wide run
        that died break the locks it left on several clusters, each under its own holder; a
        cluster's lock is taken only when its holder is one of them.
    type: list
    elements: str
  force_break_holder:
    description:
      - Take the lock from this exact holder even while it is live (its run still renews it).
        Only for a run known to be gone whose renewer still runs; the holder may still write.
        I(fence) does not apply, since the holder's renewals move the Lease on.
    type: list
    elements: str
  fence:
    description:
      - The Lease's resourceVersion when this run first read the cluster (C('') when there was
        none). Acquiring fails when the Lease changed since, because another run then held the
        cluster and this run's decisions may be out of date.
    type: str
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Hold the cluster for this run
  meshfleet.istio.run_lock:
    holder: "{{ meshfleet_run_id }}"

- name: Hold the lock the play's module defaults describe (run_lock)
  meshfleet.istio.run_lock:

- name: Take over the lock a dead run left
  meshfleet.istio.run_lock:
    holder: "{{ meshfleet_run_id }}"
    break_holder: 20261126T131500Z-upgrade-cluster1-123456

- name: Give it back
  meshfleet.istio.run_lock:
    holder: "{{ meshfleet_run_id }}"
    state: released
"""

RETURN = r"""
holder:
  description: Who holds the lock after the task (empty once released).
  returned: always
  type: str
  sample: 20261126T131500Z-upgrade-cluster1-123456
previous_holder:
  description: Who held it before (a stale, expired or broken holder when taken over).
  returned: always
  type: str
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.lock_keeper import LockKeeper
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.run_lock import LockHeld, LockMoved

ARGUMENT_SPEC = dict(
    holder=dict(type="str"),
    state=dict(type="str", choices=["acquired", "released", "available"], default="acquired"),
    ttl=dict(type="int"),
    break_holder=dict(type="list", elements="str"),
    force_break_holder=dict(type="list", elements="str"),
    fence=dict(type="str"),
)


def acquire(module, keeper):
    check = module.check_mode or module.params["state"] == "available"
    action, previous = keeper.acquire(check_mode=check)
    if action == "take" and previous and previous != keeper.holder:
        module.warn("taking over the run lock from %s" % previous)
    return dict(changed=action in ("create", "take") and module.params["state"] == "acquired",
                holder=keeper.holder, previous_holder=previous)


def release(module, keeper):
    previous = keeper.release(check_mode=module.check_mode)
    if previous != keeper.holder:
        return dict(changed=False, holder=previous, previous_holder=previous)
    return dict(changed=True, holder="", previous_holder=previous)


def lock_options(params):
    """This task's options, each one left out taken from the run's lock (run_lock)."""
    options = dict(params.get("run_lock") or {})
    for name in ("holder", "ttl", "break_holder", "force_break_holder", "fence"):
        if params.get(name) is not None:
            options[name] = params[name]
    return options


def hold_lock(module, cluster):
    keeper = LockKeeper.from_params(cluster.api, lock_options(module.params))
    try:
        if module.params["state"] == "released":
            return release(module, keeper)
        return acquire(module, keeper)
    except (LockHeld, LockMoved) as error:
        # This module's own refusals name the holder; they need no cluster prefix.
        raise MeshfleetError(str(error)) from error


def main():
    module = k8s_module(ARGUMENT_SPEC, required_one_of=[("holder", "run_lock")])
    run_module(module, hold_lock)


if __name__ == "__main__":
    main()
