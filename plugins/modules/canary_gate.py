#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: canary_gate
short_description: Let a cluster outside the canary wave change only after the canary wave passed
version_added: 0.1.0
description:
  - Reads the upgrade record (see M(meshfleet.istio.upgrade_record)) of every canary cluster,
    each reached through its own kubeconfig and context (I(canaries)), or through a context in
    the kubeconfig of the auth options (I(canary_contexts)), and succeeds only when every one of
    them records a passed upgrade to I(revision).
  - Fails otherwise, naming each canary cluster and what it records (nothing, another revision,
    a started, failed or rolled-back upgrade) or why it could not be read. The result's I(state)
    tells a caller whether waiting can help (C(waiting)) or not (C(closed)); retry the task while
    it is C(waiting) to wait for a canary wave running in another job, such as another slice of
    a sliced controller job.
  - Reads only; the cluster the task runs for is not contacted.
attributes:
  check_mode:
    support: full
    description: Reads as in a normal run.
  diff_mode:
    support: none
    description: Reads only.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
options:
  revision:
    description: The revision the canary clusters must have passed an upgrade to.
    type: str
    required: true
  canary_contexts:
    description:
      - The kubeconfig contexts of canary clusters, in the kubeconfig of the auth options.
      - Together with I(canaries), the canary wave; when both are empty the gate is open (a
        fleet upgraded without a canary wave).
    type: list
    elements: str
    default: []
  canaries:
    description:
      - Canary clusters, each read through its own kubeconfig file and context (a fleet with one
        kubeconfig per cluster); see the C(meshfleet.istio.canary_clusters) filter.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The cluster's name in messages (its inventory host); the context by default.
        type: str
      context:
        description: The cluster's context in I(kubeconfig).
        type: str
        required: true
      kubeconfig:
        description: The cluster's kubeconfig file; the one of the auth options when not set.
        type: path
  since:
    description:
      - When this run started, in UTC as the records have it (C(2026-11-26T16:00:00Z)).
      - A failure or rollback a canary recorded before then comes from an earlier run; the
        canary may be upgraded again by a run going on now (another slice of the same job), so
        the state is C(waiting), not C(closed). Without I(since) every such record closes the
        gate.
    type: str
  cluster:
    description: Name of the cluster the gate guards, for the messages.
    type: str
    default: this cluster
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Wait up to an hour for the canary wave (run by another slice) to pass
  meshfleet.istio.canary_gate:
    revision: 1-31-0
    canaries:
      - {name: staging-eu1, context: staging-eu1, kubeconfig: /etc/meshfleet/staging-eu1.yaml}
    since: "{{ run_started }}"
    cluster: "{{ inventory_hostname }}"
  register: gate
  until: gate.state != 'waiting'
  retries: 240
  delay: 15
"""

RETURN = r"""
state:
  description: C(open), C(waiting) (a canary has not passed yet) or C(closed) (a canary failed
    the upgrade or was rolled back from it, since I(since)).
  returned: always
  type: str
  sample: open
canaries:
  description: Each canary cluster's record, with C(error) set when it could not be read;
    C(context) names the cluster (its name, and its context when that differs).
  returned: always
  type: list
  elements: dict
  sample: [{context: staging-eu1, revision: 1-31-0, phase: passed,
            run_id: 20261126T160000Z-upgrade-staging-eu1-4711, updated: "2026-11-26T16:05:00Z",
            error: ""}]
"""

from ansible_collections.meshfleet.istio.plugins.module_utils import upgrade_record
from ansible_collections.meshfleet.istio.plugins.module_utils.access import unreachable
from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import Cluster, k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module

ARGUMENT_SPEC = dict(
    revision=dict(type="str", required=True),
    canary_contexts=dict(type="list", elements="str", default=[]),
    canaries=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str"),
        context=dict(type="str", required=True),
        kubeconfig=dict(type="path"),
    )),
    since=dict(type="str"),
    cluster=dict(type="str", default="this cluster"),
)


def read_canary(module, canary):
    """One canary's record, read through its own kubeconfig (if given) and context."""
    name, context = canary.get("name") or canary["context"], canary["context"]
    label = name if name == context else "%s (context %s)" % (name, context)
    kubeconfig = canary.get("kubeconfig") or module.params.get("kubeconfig")
    try:
        configmap = Cluster(module, context=context, kubeconfig=canary.get("kubeconfig")).get(
            upgrade_record.RECORD_API, "ConfigMap", upgrade_record.RECORD_NAME,
            upgrade_record.RECORD_NAMESPACE)
    except Exception as error:  # pylint: disable=broad-except
        text = str(error)
        message = unreachable(label, text)
        if message:
            return upgrade_record.CanaryRecord(label, error=message)
        return upgrade_record.CanaryRecord(label, error="%s (read through context %s of %s)" % (
            text.splitlines()[0] if text else type(error).__name__, context,
            kubeconfig or "the default kubeconfig"))
    return upgrade_record.CanaryRecord(label, upgrade_record.record_of(configmap))


def hold_or_open(module):
    params = module.params
    wave = params["canaries"] + [dict(name=c, context=c) for c in params["canary_contexts"]]
    canaries = [read_canary(module, canary) for canary in wave]
    state = upgrade_record.gate_state(canaries, params["revision"], params["since"])
    result = dict(changed=False, state=state, canaries=[c.as_dict() for c in canaries])
    if state != "open":
        raise MeshfleetError(
            upgrade_record.gate_message(params["cluster"], params["revision"], canaries), **result)
    return result


def main():
    # Only the canary clusters are read, each through its own context: no connection here.
    run_module(k8s_module(ARGUMENT_SPEC), hold_or_open, connect=None)


if __name__ == "__main__":
    main()
