#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: replicas_wait
short_description: Wait until Deployments run a minimum of Ready replicas
version_added: 0.1.0
description:
  - Polls each Deployment until its C(status.readyReplicas) reaches its minimum, for example a
    gateway whose HorizontalPodAutoscaler scales it up from one replica after C(helm --wait)
    returned.
  - All Deployments are awaited in one module process, one read of each per poll; a Deployment
    that does not exist yet counts as having no Ready replica.
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
  deployments:
    description: The Deployments to wait for.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The Deployment's name.
        type: str
        required: true
      namespace:
        description: Its namespace.
        type: str
        required: true
      minimum:
        description: The number of Ready replicas to wait for.
        type: int
        required: true
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
- name: Wait until each gateway runs its minimum replicas
  meshfleet.istio.replicas_wait:
    deployments:
      - name: istio-ingressgateway-1-31-0
        namespace: istio-gateways
        minimum: 2
    timeout: 300
"""

RETURN = r"""
deployments:
  description: Each Deployment with its C(minimum) and the C(ready) replicas last read.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "istio-ingressgateway-1-31-0", "namespace": "istio-gateways",
            "minimum": 2, "ready": 2}]
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.replicas_wait import (
    wait_for_replicas,
)

ARGUMENT_SPEC = dict(
    deployments=dict(type="list", elements="dict", required=True, options=dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        minimum=dict(type="int", required=True),
    )),
    timeout=dict(type="int", default=300),
    interval=dict(type="int", default=2),
)


def run(module, cluster):
    params = module.params
    readiness = wait_for_replicas(cluster, params["deployments"], params["timeout"],
                                  params["interval"], check_mode=module.check_mode)
    return dict(changed=False, deployments=readiness)


def main():
    run_module(k8s_module(ARGUMENT_SPEC), run)


if __name__ == "__main__":
    main()
