#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upgrade_record
short_description: Record how a cluster's upgrade to a revision went
version_added: 0.1.0
description:
  - Keeps the ConfigMap C(kube-system/meshfleet-upgrade) naming the revision of the cluster's
    last upgrade, its phase (C(started), C(passed), C(failed), C(rolled-back)), the run and the
    time. M(meshfleet.istio.canary_gate) reads it on the canary clusters.
  - Keeps the last 20 transitions (revision, phase, run, time; oldest first) in the data key
    C(history) as a JSON list, for the fleet report's upgrade timeline. A transition is appended
    only when the record is written.
  - Writes only when the revision or the phase differ from what the cluster records, so a rerun
    of a finished upgrade writes nothing.
  - With I(state=absent), forgets the record (uninstall does, so the canary gate never trusts a
    record from before a new install); nothing is written when there is none.
  - M(meshfleet.istio.mesh_info) and M(meshfleet.istio.rollback_plan) return the record as read.
attributes:
  check_mode:
    support: full
    description: Reports whether the record would change; writes nothing.
  diff_mode:
    support: full
    description: Returns the record before and after.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
options:
  state:
    description: C(present) records a phase, C(absent) forgets the record.
    type: str
    choices: [present, absent]
    default: present
  revision:
    description:
      - The revision the upgrade goes to, for example C(1-31-0).
      - Required when I(state=present).
    type: str
  phase:
    description:
      - How the upgrade to I(revision) stands.
      - Required when I(state=present).
    type: str
    choices: [started, passed, failed, rolled-back]
  run_id:
    description:
      - The run that reached this phase.
      - Required when I(state=present).
    type: str
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Record that this cluster passed its upgrade to 1-31-0
  meshfleet.istio.upgrade_record:
    revision: 1-31-0
    phase: passed
    run_id: "{{ meshfleet_run_id }}"

- name: Forget the record
  meshfleet.istio.upgrade_record:
    state: absent
"""

RETURN = r"""
record:
  description: The cluster's record after the task, with its history (oldest transition first;
    empty after I(state=absent)).
  returned: always
  type: dict
  sample: {revision: 1-31-0, phase: passed, run_id: 20261126T160000Z-upgrade-cluster1-4711,
           updated: "2026-11-26T16:05:00Z",
           history: [{revision: 1-31-0, phase: started, run_id: 20261126T160000Z-upgrade-cluster1-4711,
                      updated: "2026-11-26T16:01:00Z"},
                     {revision: 1-31-0, phase: passed, run_id: 20261126T160000Z-upgrade-cluster1-4711,
                      updated: "2026-11-26T16:05:00Z"}]}
previous:
  description: The record before the task, with its history (empty when the cluster had none).
  returned: always
  type: dict
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.upgrade_record import (
    PHASES,
    RECORD_API,
    RECORD_NAME,
    RECORD_NAMESPACE,
    needs_write,
    record_body,
    record_facts,
)

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["present", "absent"], default="present"),
    revision=dict(type="str"),
    phase=dict(type="str", choices=list(PHASES)),
    run_id=dict(type="str"),
)
REQUIRED_IF = [("state", "present", ("revision", "phase", "run_id"))]


def record_phase(module, cluster):
    params = module.params
    configmap = cluster.get(RECORD_API, "ConfigMap", RECORD_NAME, RECORD_NAMESPACE)
    previous = record_facts(configmap)
    if params["state"] == "absent":
        changed, record = configmap is not None, {}
        if changed:
            cluster.delete(RECORD_API, "ConfigMap", RECORD_NAME, RECORD_NAMESPACE)
    else:
        changed = needs_write(previous, params["revision"], params["phase"])
        record = previous
        if changed:
            body = record_body(params["revision"], params["phase"], params["run_id"], configmap)
            record = record_facts(cluster.apply(body))
    result = dict(changed=changed, record=record, previous=previous)
    if module._diff:
        result["diff"] = dict(before=previous, after=record)
    return result


def main():
    run_module(k8s_module(ARGUMENT_SPEC, required_if=REQUIRED_IF), record_phase)


if __name__ == "__main__":
    main()
