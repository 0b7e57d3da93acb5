#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_cutover
short_description: Cut a stable gateway Service over to a revision's gateways
version_added: 0.1.0
description:
  - Points the selector key C(istio.io/rev) of a stable gateway Service (as the
    C(meshfleet.istio.gateways) role creates them, for example
    C(istio=ingressgateway, istio.io/rev=1-30-dev)) at another revision, so the Service's
    traffic moves to that revision's gateway pods. Every other selector key is kept.
  - Cuts over only when the pods the new selector selects are Ready in sufficient number
    (I(min_ready)); otherwise fails with a message naming the Service, the revision and the
    Ready and needed counts, and writes nothing.
  - Writes a single merge patch of C(spec.selector.istio.io/rev) as field manager C(meshfleet),
    so the Service's other fields are untouched. When the selector already points at the revision
    nothing is written and the readiness check is skipped.
  - Reversible; running it again with the previous revision is the rollback.
attributes:
  check_mode:
    support: full
    description: The patch is sent as a server-side dry run after the same readiness check.
  diff_mode:
    support: full
    description: Returns the Service before and after the cut-over.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
options:
  name:
    description: Name of the stable gateway Service, for example C(istio-ingressgateway).
    type: str
    required: true
  namespace:
    description: Namespace of the Service.
    type: str
    default: istio-gateways
  revision:
    description: Revision whose gateway pods the Service selects afterwards, for example C(1-31-0).
    type: str
    required: true
  min_ready:
    description:
      - How many of the revision's gateway pods (pods matching the new selector) must be Ready
        for the cut-over, at least 1.
      - Defaults to the number of Ready pods the Service selects now, and at least 1.
    type: int
  assume_ready:
    description:
      - In check mode, predict the cut-over although too few of the revision's gateway pods
        are Ready, because an earlier step of the same run creates them (check mode did not).
        The result then has RV(assumed_ready) set. Ignored outside check mode.
    type: bool
    default: false
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Move the ingress gateway's traffic to the canary revision
  meshfleet.istio.gateway_cutover:
    name: istio-ingressgateway
    namespace: istio-gateways
    revision: 1-31-0

- name: Roll back to the old revision's gateways
  meshfleet.istio.gateway_cutover:
    name: istio-ingressgateway
    namespace: istio-gateways
    revision: 1-30-dev

- name: Cut over once at least three new gateway pods are Ready
  meshfleet.istio.gateway_cutover:
    name: istio-ingressgateway
    revision: 1-31-0
    min_ready: 3
"""

RETURN = r"""
previous_revision:
  description: The revision the Service selected before the task (null when its selector had none).
  returned: always
  type: str
  sample: 1-30-dev
revision:
  description: The revision the Service selects after the task.
  returned: always
  type: str
  sample: 1-31-0
ready_pods:
  description: Ready gateway pods of I(revision) that the Service selects (or would select).
  returned: always
  type: int
  sample: 2
objects:
  description: The Service, as C(namespace/Service/name), when the task changed it; else empty.
  returned: always
  type: list
  elements: str
  sample: ["istio-gateways/Service/istio-ingressgateway"]
assumed_ready:
  description: Check mode predicted the cut-over assuming the gateway pods this run creates become Ready (I(assume_ready)).
  returned: when the prediction made that assumption
  type: bool
  sample: true
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.converge import Changes
from ansible_collections.meshfleet.istio.plugins.module_utils.gateway_services import (
    CutoverError,
    cut_over,
    predict_cut_over,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import check_revision_name

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str", default="istio-gateways"),
    revision=dict(type="str", required=True),
    min_ready=dict(type="int"),
    assume_ready=dict(type="bool", default=False),
)


def run(module, cluster):
    params = module.params
    changes = Changes()
    try:
        result = cut_over(cluster, changes, params["name"], params["namespace"],
                          check_revision_name(params["revision"]), params["min_ready"])
    except CutoverError as error:
        if not (module.check_mode and params["assume_ready"] and error.not_ready):
            raise
        result = predict_cut_over(cluster, changes, params["name"], params["namespace"],
                                  params["revision"])
        module.warn("check mode: the cut-over of %s/%s to %s is predicted on the assumption "
                    "that the gateway pods this run creates become Ready (%s)"
                    % (params["namespace"], params["name"], params["revision"], error))
    return changes.result(module, **result)


def main():
    run_module(k8s_module(ARGUMENT_SPEC), run)


if __name__ == "__main__":
    main()
