#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: istio_operator_wait
short_description: Wait until IstioOperators are installed by their operators
version_added: 0.1.0
description:
  - Polls each IstioOperator (the operator engine, Istio 1.22 and 1.23) until its in-cluster
    operator reports it C(HEALTHY) for the spec as last written, and every Deployment the
    operator made for it (label C(install.operator.istio.io/owning-resource)) has its minimum of
    Ready replicas and carries the IstioOperator's Istio version (label C(operator.istio.io/version)).
  - An IstioOperator's status does not say which spec it describes; a status written through
    the status subresource at or after the spec's last write (the times in C(managedFields),
    to the second) is taken as the operator's answer to that spec.
  - All IstioOperators are awaited in one module process; one that does not exist yet counts
    as not installed.
attributes:
  check_mode:
    support: full
    description: Reads once and does not wait.
  diff_mode:
    support: none
    description: It changes nothing.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
options:
  istio_operators:
    description: The IstioOperators to wait for.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The IstioOperator's name.
        type: str
        required: true
      namespace:
        description: Its namespace.
        type: str
        required: true
      version:
        description: The Istio version its Deployments must carry.
        type: str
        required: true
      minimum:
        description: The Ready replicas each of its Deployments needs (a gateway's HPA minimum).
        type: int
        default: 1
  timeout:
    description: Seconds to wait in all before failing.
    type: int
    default: 300
  interval:
    description: Seconds between two polls.
    type: int
    default: 2
"""

EXAMPLES = r"""
- name: Wait until the control plane of revision 1-22-8 is installed
  meshfleet.istio.istio_operator_wait:
    istio_operators:
      - name: istiod-1-22-8
        namespace: istio-system
        version: 1.22.8
    timeout: 300
"""

RETURN = r"""
istio_operators:
  description: Where each IstioOperator stands, as last read.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The IstioOperator.
      type: str
    namespace:
      description: Its namespace.
      type: str
    status:
      description: Its C(status.status) (C(HEALTHY), C(RECONCILING), C(ERROR), ...), empty before the operator's first answer, C(absent) when it does not exist.
      type: str
    reconciled:
      description: Whether that status was written at or after the spec's last write.
      type: bool
    errors:
      description: Components whose status is not C(HEALTHY), with their error.
      type: list
      elements: str
    message:
      description: The status message.
      type: str
    deployments:
      description: The Deployments made for it, each with C(name), C(namespace), C(version) and C(ready) replicas.
      type: list
      elements: dict
    installed:
      description: Whether it is installed (the condition waited for).
      type: bool
  sample: [{"name": "istiod-1-22-8", "namespace": "istio-system", "status": "HEALTHY",
            "reconciled": true, "errors": [], "message": "", "installed": true,
            "deployments": [{"name": "istiod-1-22-8", "namespace": "istio-system",
                             "version": "1.22.8", "ready": 2}]}]
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.istio_operator_status import (
    wait_for_installed,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module

ARGUMENT_SPEC = dict(
    istio_operators=dict(type="list", elements="dict", required=True, options=dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        version=dict(type="str", required=True),
        minimum=dict(type="int", default=1),
    )),
    timeout=dict(type="int", default=300),
    interval=dict(type="int", default=2),
)


def run(module, cluster):
    params = module.params
    standings = wait_for_installed(cluster, params["istio_operators"], params["timeout"],
                                   params["interval"], check_mode=module.check_mode)
    return dict(changed=False, istio_operators=standings)


def main():
    run_module(k8s_module(ARGUMENT_SPEC), run)


if __name__ == "__main__":
    main()
