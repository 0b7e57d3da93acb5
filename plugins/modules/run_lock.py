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
    Acquiring fails with the holder's name and the way out when another live run holds it, so
    overlapping scheduled runs stop before they write.
  - A lock whose Lease expired (the run died) is taken over. A live lock is broken only when
    I(break_holder) names its exact holder, so a stale lock can be broken safely without
    breaking the wrong run.
  - Releasing removes the Lease only when this run holds it.
author:
  - meshfleet contributors (@meshfleet)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Reports whether the lock could be acquired or released; writes nothing.
  diff_mode:
    support: none
    description: The Lease is run bookkeeping, not mesh state.
options:
  holder:
    description: Identity of this run, unique per run (for example a timestamp, user and host).
    type: str
    required: true
  state:
    description: C(acquired) holds the lock, C(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  ttl:
    description: Seconds after which a lock that was not released counts as stale.
    type: int
    default: 7200
  break_holder:
    description:
      - Take the lock from this exact holder even though its Lease has not expired.
      - Several holders (a list, or a comma-separated string) let one rerun of a fleet-wide run
        that died break the locks it left on several clusters, each under its own holder; a
        cluster's lock is taken only when its holder is one of them.
    type: list
    elements: str
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Hold the cluster for this run
  meshfleet.istio.run_lock:
    holder: "{{ meshfleet_run_id }}"

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
  sample: 20261126T131500-admin@awx-7f9c
previous_holder:
  description: Who held it before (a stale or broken holder when taken over).
  returned: always
  type: str
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.kube import Cluster, k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.run_lock import (
    LEASE_API,
    LEASE_NAME,
    LEASE_NAMESPACE,
    LockHeld,
    decide_acquire,
    holder_of,
    lease_body,
)

ARGUMENT_SPEC = dict(
    holder=dict(type="str", required=True),
    state=dict(type="str", choices=["acquired", "released"], default="acquired"),
    ttl=dict(type="int", default=7200),
    break_holder=dict(type="list", elements="str"),
)


def acquire(module, cluster, lease):
    params = module.params
    action = decide_acquire(lease, params["holder"], params["break_holder"])
    previous = holder_of(lease)
    if action != "create" and previous != params["holder"]:
        module.warn("taking over the run lock from %s" % previous)
    if not module.check_mode:
        resource = cluster.resource(LEASE_API, "Lease")
        if action == "create":
            cluster.client.create(resource, body=lease_body(params["holder"], params["ttl"]),
                                  namespace=LEASE_NAMESPACE)
        else:
            cluster.client.replace(resource, body=lease_body(
                params["holder"], params["ttl"], lease["metadata"]["resourceVersion"]),
                namespace=LEASE_NAMESPACE)
    return dict(changed=action != "renew", holder=params["holder"], previous_holder=previous)


def release(module, cluster, lease):
    previous = holder_of(lease)
    if lease is None or previous != module.params["holder"]:
        return dict(changed=False, holder=previous, previous_holder=previous)
    if not module.check_mode:
        cluster.delete(LEASE_API, "Lease", LEASE_NAME, LEASE_NAMESPACE)
    return dict(changed=True, holder="", previous_holder=previous)


def main():
    module = k8s_module(ARGUMENT_SPEC)
    cluster = Cluster(module)
    try:
        lease = cluster.get(LEASE_API, "Lease", LEASE_NAME, LEASE_NAMESPACE)
        if module.params["state"] == "released":
            result = release(module, cluster, lease)
        else:
            result = acquire(module, cluster, lease)
    except LockHeld as error:
        module.fail_json(msg=str(error))
    except Exception as error:  # pylint: disable=broad-except
        module.fail_from_exception(error)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
