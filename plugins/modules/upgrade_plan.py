#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upgrade_plan
short_description: Plan the canary upgrade of one cluster to an Istio version
version_added: 0.1.0
description:
  - Reads the cluster once and returns the ordered steps of a revision-tag canary upgrade to
    I(target_version), each marked C(done), C(pending) or C(needs_a_hand) from the cluster's
    own state, so a rerun after any failure resumes where the cluster really is.
  - Refuses, before anything is written, a version not in the catalogue, a Kubernetes version
    outside the target's range, a downgrade, a jump of more minors than I(max_minor_jump), a
    data plane that would end up ahead of its control plane, and a cluster with no Istio.
  - A cluster already at the target has no pending step.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
  - meshfleet.istio.mesh_read
  - meshfleet.istio.upgrade_tags
options:
  target_version:
    description: The Istio version to move to, for example C(1.31.0).
    type: str
    required: true
  max_minor_jump:
    description:
      - How many minors one upgrade may jump. The guide asks for one at a time; Istio supports
        canary upgrades of at most two.
    type: int
    choices: [1, 2]
    default: 1
  gateway_names:
    description:
      - The names of the spec's gateways. A Service that meshfleet did not create, named like one
        of them and selecting the gateway pods of an installed revision, is adopted by the
        gateways step, so the plan cuts it over with the stable Services.
    type: list
    elements: str
    default: []
  canary_namespaces:
    description:
      - The namespaces the health gate moves to the canary tag first; the plan migrates them
        with the others.
    type: list
    elements: str
    default: []
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Plan the move to 1.31.0
  meshfleet.istio.upgrade_plan:
    target_version: 1.31.0
  register: __plan

- name: Stop here when the cluster is already there
  ansible.builtin.meta: end_host
  when: __plan.plan.pending | length == 0
"""

RETURN = r"""
lock:
  description:
    - The cluster's run lock as read with the plan (C(state) is C(absent), C(free), C(live),
      C(stale) or C(expired); C(holder), C(age_seconds), C(expires_in_seconds),
      C(renew_seconds), C(resource_version), C(summary)).
    - Its C(resource_version) is the fence a playbook passes to the run lock, so the lock is
      taken only when no other run held the cluster since this plan was made.
  returned: success
  type: dict
  sample: {"state": "free", "holder": "", "resource_version": "4711", "summary": "free"}
plan:
  description: The upgrade of this cluster.
  returned: success
  type: dict
  contains:
    current_revision:
      description: The revision the stable tag (else C(default)) selects now.
      type: str
      sample: 1-30-5
    current_version:
      description: Its Istio version.
      type: str
      sample: 1.30.5
    target_revision:
      description: The revision the target version installs as.
      type: str
      sample: 1-31-0
    target_version:
      description: The target version.
      type: str
      sample: 1.31.0
    minor_jump:
      description: Minors between the current and the target version.
      type: int
      sample: 1
    old_revisions:
      description: Installed revisions other than the target, the ones the upgrade prunes.
      type: list
      elements: str
    migrate_namespaces:
      description:
        - The namespaces whose workloads move to the stable tag, sorted. These are the
          namespaces on the stable or canary tag or pinned to an old revision, those on
          C(istio-injection=enabled) (that label goes, it would win over the tag), and the
          canary namespaces.
        - A namespace whose C(istio-injection) label has any other value has injection off and
          is left alone.
      type: list
      elements: str
    gateway_services:
      description:
        - The stable gateway Services to cut over, each with C(name) and C(namespace), hand-made
          ones named in I(gateway_names) included.
      type: list
      elements: dict
    steps:
      description: The steps in order, each with C(name), C(done), C(state) and C(detail).
      type: list
      elements: dict
    pending:
      description: Names of the steps still to do.
      type: list
      elements: str
    needs_a_hand:
      description: What no step can move (bare pods, Jobs keeping an old revision in use).
      type: list
      elements: str
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import (
    MeshSnapshot,
    read_cluster,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.upgrade_plan import plan

ARGUMENT_SPEC = dict(
    target_version=dict(type="str", required=True),
    max_minor_jump=dict(type="int", choices=[1, 2], default=1),
    stable_tag=dict(type="str", default="prod-stable"),
    canary_tag=dict(type="str", default="prod-canary"),
    canary_namespaces=dict(type="list", elements="str", default=[]),
    gateway_names=dict(type="list", elements="str", default=[]),
    istio_namespace=dict(type="str", default="istio-system"),
)


def plan_upgrade(module, cluster):
    params = module.params
    snapshot = MeshSnapshot(read_cluster(cluster, params["istio_namespace"]))
    result = plan(snapshot, params["target_version"], params["stable_tag"],
                  params["canary_tag"], params["max_minor_jump"], params["canary_namespaces"],
                  params["gateway_names"])
    return dict(changed=False, plan=result, lock=snapshot.lock())


def main():
    run_module(k8s_module(ARGUMENT_SPEC), plan_upgrade)


if __name__ == "__main__":
    main()
