#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: workload_migrate
short_description: Move namespaces to a revision tag and restart their workloads onto it
version_added: 0.1.0
description:
  - Resolves I(tag) to the revision it points at (a revision name resolves to itself) and
    refuses when that revision is not installed or its istiod is not Ready.
  - Labels each namespace C(istio.io/rev=<tag>) and removes C(istio-injection), then replaces the
    Deployments, StatefulSets and DaemonSets that have a pod whose sidecar comes from another
    revision. A pod's revision is its C(istio.io/rev) annotation, which the injector sets to the
    real revision (its label may be a tag). Pods without a sidecar are left alone.
  - A workload is replaced with a rollout restart (the pod template annotation
    C(kubectl.kubernetes.io/restartedAt), as C(kubectl rollout restart) writes it), awaited as
    C(kubectl rollout status) awaits it.
  - A rollout ignores PodDisruptionBudgets. A workload whose pod template labels a
    PodDisruptionBudget selects is therefore replaced pod by pod through the Eviction API
    (C(policy/v1)), which the apiserver checks against the budget; an eviction answered with
    HTTP 429 (no disruption allowed now) is retried until I(timeout). Before each eviction every
    pod of the workload, including the replacement of the previous evicted pod, must be Ready.
  - StatefulSets and DaemonSets with update strategy C(OnDelete), and StatefulSets with a rolling
    update partition, are replaced pod by pod the same way (StatefulSets highest ordinal first),
    since a template change replaces none of their pods.
  - Bare pods, pods of Jobs and CronJobs, pods of other controllers, paused Deployments and
    workloads covered by more than one PodDisruptionBudget are not restarted; they are returned
    in RV(not_moved) with a reason.
  - Workloads are replaced I(batch_size) at a time; a batch is finished (or timed out) before the
    next starts. When a workload times out and I(fail_on_timeout=true), later batches are not
    started and the task fails; the workload's own rollout is left running, not rolled back.
  - A second run finds every movable pod on the revision and the labels in place, and sends no
    write request.
attributes:
  check_mode:
    support: full
    description: >-
      Namespace labels are sent as server-side dry runs; no workload is restarted and no pod is
      evicted. The result lists the namespaces that would be relabelled and the workloads that
      would be replaced.
  diff_mode:
    support: full
    description: >-
      The namespaces before and after relabelling, and the list of workloads replaced with the
      revisions their pods ran before and after.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
  - meshfleet.istio.istio_namespace
options:
  namespaces:
    description:
      - Namespaces to move to I(tag). Each must exist; I(istio_namespace) is refused.
    type: list
    elements: str
    required: true
  tag:
    description:
      - Revision tag (for example C(prod-stable)) or revision name (for example C(1-31-0)) the
        namespaces select after the task. Workloads are restarted onto the revision it resolves to.
    type: str
    required: true
  batch_size:
    description: Number of workloads replaced at the same time.
    type: int
    default: 1
  timeout:
    description:
      - Seconds one workload may take to be replaced (its rollout, or all its evictions and
        their Ready replacements).
    type: int
    default: 300
  fail_on_timeout:
    description:
      - Fail the task when a workload times out, and start no later batch. With C(false) the
        remaining batches still run and the timeouts are only reported (and warned about).
    type: bool
    default: true
  expect_revision:
    description:
      - In check mode, the revision I(tag) will select by the time this task runs for real (an
        earlier step of the same run moves the tag there, and may install the revision, which
        check mode did not do). The prediction then lists the workloads to restart onto it.
      - Ignored outside check mode, where the tag is read from the cluster.
    type: str
requirements:
  - kubernetes >= 24.2.0
notes:
  - Needs permission to patch namespaces, Deployments, StatefulSets and DaemonSets, to create
    C(pods/eviction), and to list pods, ReplicaSets, Jobs and PodDisruptionBudgets.
"""

EXAMPLES = r"""
- name: Promote 1-31-0 by moving prod-stable to it
  meshfleet.istio.revision_tag:
    tag: prod-stable
    revision: 1-31-0
    overwrite: true

- name: Restart the shop's workloads onto it, two at a time
  meshfleet.istio.workload_migrate:
    namespaces: [shop, payments]
    tag: prod-stable
    batch_size: 2
    timeout: 600
  register: migration

- name: Show what could not be moved
  ansible.builtin.debug:
    msg: "{{ migration.not_moved | map(attribute='reason') | list }}"
"""

RETURN = r"""
tag:
  description: The tag (or revision) the namespaces select.
  returned: always
  type: str
  sample: prod-stable
revision:
  description: The revision I(tag) resolves to, which the replaced pods run.
  returned: always
  type: str
  sample: 1-31-0
relabelled:
  description: Namespaces whose labels were changed (in check mode, would be).
  returned: always
  type: list
  elements: str
  sample: [shop]
restarted:
  description:
    - Workloads replaced onto the revision (in check mode, that would be).
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the workload.
      type: str
    kind:
      description: C(Deployment), C(StatefulSet) or C(DaemonSet).
      type: str
    name:
      description: Name of the workload.
      type: str
    method:
      description: C(rollout-restart) or C(eviction) (pod by pod through the Eviction API).
      type: str
    method_reason:
      description: Why that method was chosen.
      type: str
    from_revisions:
      description: Revisions its stale pods ran, with the number of pods of each.
      type: dict
    duration:
      description: Seconds the replacement took (0 in check mode).
      type: float
    pods_evicted:
      description: Pods evicted (0 for a rollout restart).
      type: int
    evictions_refused:
      description: Evictions answered with HTTP 429 and retried.
      type: int
  sample:
    - namespace: shop
      kind: Deployment
      name: cart
      method: eviction
      method_reason: PodDisruptionBudget cart covers its pods
      from_revisions: {"1-30-3": 3}
      duration: 41.5
      pods_evicted: 3
      evictions_refused: 2
not_moved:
  description:
    - Pods of another revision that are still there after the task, grouped by what owns them.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the pods.
      type: str
    kind:
      description: What owns the pods (C(Pod) for a bare pod, C(Job), C(CronJob), a workload kind).
      type: str
    name:
      description: Name of the owner.
      type: str
    cause:
      description:
        - One of C(bare-pod), C(job), C(cronjob), C(unmanaged), C(paused), C(multiple-pdbs),
          C(timeout), C(skipped) (a timeout in an earlier batch stopped the task) or
          C(still-stale) (replaced, but the new pods still run another revision).
      type: str
    reason:
      description: What happened and what to do about it.
      type: str
    revisions:
      description: Revisions the pods run, with the number of pods of each.
      type: dict
    pods:
      description: Names of the pods.
      type: list
      elements: str
    progress:
      description:
        - For workloads that were started, their counts at the end (C(desired), C(ready) and,
          for a rollout, C(updated) and C(available); for evictions, C(replaced) and
          C(to_replace)).
      type: dict
      returned: for causes timeout, skipped and still-stale
  sample:
    - namespace: shop
      kind: Pod
      name: debug
      cause: bare-pod
      reason: "a bare pod has no controller to recreate it: delete and recreate it ..."
      revisions: {"1-30-3": 1}
      pods: [debug]
timed_out:
  description: Workloads that timed out, as C(namespace/Kind/name).
  returned: always
  type: list
  elements: str
  sample: [shop/Deployment/cart]
objects:
  description: Namespaces relabelled and workloads replaced, as C(Namespace/name) or C(namespace/Kind/name).
  returned: always
  type: list
  elements: str
  sample: [Namespace/shop, shop/Deployment/cart]
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.converge import Changes
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import (
    MeshSnapshot,
    read_cluster,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import check_revision_name
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_api import WorkloadApi
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_migrate import (
    check_options,
    migrate,
    target_revision,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_plan import MigrationError

ARGUMENT_SPEC = dict(
    namespaces=dict(type="list", elements="str", required=True),
    tag=dict(type="str", required=True),
    istio_namespace=dict(type="str", default="istio-system"),
    batch_size=dict(type="int", default=1),
    timeout=dict(type="int", default=300),
    fail_on_timeout=dict(type="bool", default=True),
    expect_revision=dict(type="str"),
)


def run(module, cluster):
    check_options(module.params)
    expected = module.params["expect_revision"]
    if module.check_mode and expected:
        # The tag moves (and the revision is installed) only in the real run.
        revision = check_revision_name(expected)
    else:
        snapshot = MeshSnapshot(read_cluster(cluster, module.params["istio_namespace"]))
        revision = target_revision(snapshot, module.params["tag"])
    params = dict(module.params, revision=revision)
    changes = Changes()
    fields = migrate(WorkloadApi(cluster), changes, params, module.check_mode)
    return changes.result(module, **fields)


def warn_about(module, result):
    kept = ["%s/%s/%s (%s)" % (e["namespace"], e["kind"], e["name"], e["cause"])
            for e in result["not_moved"] if e["cause"] not in ("timeout", "skipped")]
    if kept:
        module.warn("%d owner(s) keep pods of another revision: %s (see not_moved)"
                    % (len(kept), ", ".join(kept)))
    if result["timed_out"] and not module.params["fail_on_timeout"]:
        module.warn("timed out: %s" % ", ".join(result["timed_out"]))


def migrate_workloads(module, cluster):
    result = run(module, cluster)
    warn_about(module, result)
    if result["timed_out"] and module.params["fail_on_timeout"]:
        raise MigrationError("timed out after %ds: %s; later batches were not started (see "
                             "not_moved)" % (module.params["timeout"],
                                             ", ".join(result["timed_out"])), **result)
    return result


def main():
    run_module(k8s_module(ARGUMENT_SPEC), migrate_workloads)


if __name__ == "__main__":
    main()
