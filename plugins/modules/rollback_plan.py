#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollback_plan
short_description: Plan the rollback of one cluster to the revision it ran before its upgrade
version_added: 0.1.0
description:
  - Reads the cluster once, its upgrade record included (the ConfigMap
    C(kube-system/meshfleet-upgrade) kept by M(meshfleet.istio.upgrade_record)), and decides
    the rollback that C(rollback.yml) carries out.
  - The revision to go back to is I(revision) when given. Otherwise it is the current revision
    when the recorded upgrade never promoted its revision (it stopped at the health gate, say),
    and else the one other installed revision.
  - The plan's I(action) is C(nothing) when only one revision is installed, none is named and
    no upgrade to it is recorded, C(already-there) when the cluster already runs the revision
    it would go back to (tags, stable gateway Services and pods), and C(roll-back) otherwise.
  - Refuses, before anything is written, when the revision to go back to is not installed or
    not Ready (pruned, say), or when several revisions could be meant and none is named.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
  - meshfleet.istio.mesh_read
  - meshfleet.istio.upgrade_tags
options:
  revision:
    description:
      - The revision to go back to, for example C(1-30-3). Empty means the revision from before
        the recorded upgrade.
    type: str
    default: ""
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Plan the rollback
  meshfleet.istio.rollback_plan:
    revision: "{{ meshfleet_rollback_revision | default('', true) }}"
  register: rollback

- name: Stop here when there is nothing to roll back
  ansible.builtin.meta: end_host
  when: rollback.plan.action != 'roll-back'
"""

RETURN = r"""
plan:
  description: The rollback of this cluster.
  returned: success
  type: dict
  contains:
    action:
      description: C(nothing), C(already-there) or C(roll-back).
      type: str
      sample: roll-back
    detail:
      description: The plan in a few words.
      type: str
      sample: from 1-31-0 back to 1-30-3
    current_revision:
      description: The revision the stable tag (else the C(default) tag) points at.
      type: str
      sample: 1-31-0
    current_version:
      description: Its Istio version (empty unless I(action) is C(roll-back)).
      type: str
      sample: 1.31.0
    back_to:
      description: The revision to go back to (empty when I(action) is C(nothing)).
      type: str
      sample: 1-30-3
    upgraded_to:
      description: The revision of the cluster's recorded upgrade (empty when none is recorded).
      type: str
      sample: 1-31-0
    namespaces:
      description: The namespaces whose workloads move back, by the upgrade's rule (they select
        the stable tag, the canary tag or the current revision, or carry
        C(istio-injection=enabled)); a namespace whose C(istio-injection) turns injection off
        is left alone.
      type: list
      elements: str
    gateway_services:
      description: The stable gateway Services to cut back, each with C(name) and C(namespace).
      type: list
      elements: dict
    record_revision:
      description: The revision whose upgrade the record marks C(rolled-back).
      type: str
      sample: 1-31-0
mesh:
  description: The mesh as read, in the shape M(meshfleet.istio.mesh_info) returns.
  returned: success
  type: dict
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import (
    MeshSnapshot,
    read_cluster,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.rollback_plan import plan

ARGUMENT_SPEC = dict(
    revision=dict(type="str", default=""),
    stable_tag=dict(type="str", default="prod-stable"),
    canary_tag=dict(type="str", default="prod-canary"),
    istio_namespace=dict(type="str", default="istio-system"),
)


def plan_rollback(module, cluster):
    params = module.params
    snapshot = MeshSnapshot(read_cluster(cluster, params["istio_namespace"], helm_releases=True))
    result = plan(snapshot, params["stable_tag"], params["canary_tag"], params["revision"] or "")
    return dict(changed=False, plan=result, mesh=snapshot.facts())


def main():
    run_module(k8s_module(ARGUMENT_SPEC), plan_rollback)


if __name__ == "__main__":
    main()
