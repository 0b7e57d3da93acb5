#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: revision_prune
short_description: Remove an old Istio revision once nothing uses it
version_added: 0.1.0
description:
  - Removes a revision, its gateways' Helm releases first (the Deployments labelled
    C(istio.io/rev=<revision>) with an C(istio) label; the release is the one named in the
    Deployment's Helm annotation, else the Deployment's name), then the ConfigMaps
    C(istio-<revision>) that operator-engine layouts copy into gateway namespaces, then its istiod
    Helm release (C(istiod-<revision>) in I(istio_namespace)).
  - Refuses, and writes nothing, while anything else uses the revision, with every reason in the
    message and in I(in_use). The rule is the one M(meshfleet.istio.mesh_info) reports as
    C(in_use). In use means that a revision tag points at it; a namespace selects it or one of
    its tags (C(istio.io/rev), or C(istio-injection=enabled) while the C(default) tag points at
    it); a pod
    that has not Succeeded carries its C(istio.io/rev) annotation, or a label naming it or one of
    its tags; C(istiod-default-validator) points at it; or a Service outside the revision's
    releases, a stable gateway Service above all, has a selector naming it or one of its tags. The
    revision's own gateway and istiod pods, the Services of its releases and a tag's own Service
    do not count, since they go with it or with the tag.
  - Refuses as well when one of the revision's Deployments belongs to no Helm release.
  - A revision with nothing left to remove is no change and costs reads only. Waiting for a
    grace period before pruning is the playbook's business.
attributes:
  check_mode:
    support: full
    description: Reads and decides as in a real run, reports what would be removed, writes nothing.
  diff_mode:
    support: full
    description: The removed releases' manifests and the removed ConfigMaps, before and after.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
  - meshfleet.istio.istio_namespace
options:
  revision:
    description: The revision to remove, for example C(1-30-3).
    type: str
    required: true
  binary_path:
    description:
      - The helm binary. Helm reaches the cluster through I(kubeconfig) and I(context) (or
        C(K8S_AUTH_KUBECONFIG) and C(K8S_AUTH_CONTEXT)); the other auth options cannot be passed
        to it and are refused.
    type: path
    default: helm
requirements:
  - kubernetes >= 24.2.0
  - helm 3
"""

EXAMPLES = r"""
- name: Remove the old revision once every workload and gateway has moved
  meshfleet.istio.revision_prune:
    revision: 1-30-3

- name: Show what would be removed, and what still uses it
  meshfleet.istio.revision_prune:
    revision: 1-30-3
  check_mode: true
  diff: true
  register: __prune
  ignore_errors: true

- name: Report the uses
  ansible.builtin.debug:
    msg: "{{ __prune.in_use }}"
"""

RETURN = r"""
revision:
  description: The revision.
  returned: always
  type: str
  sample: 1-30-3
removed:
  description:
    - What the task removed (would remove, in check mode), in order, as C(release <namespace>/<name>)
      or C(ConfigMap <namespace>/<name>). Empty when the revision is gone already.
  returned: always
  type: list
  elements: str
  sample: ["release istio-gateways/istio-ingressgateway-1-30-3", "release istio-system/istiod-1-30-3"]
in_use:
  description:
    - What still uses the revision. When the revision has parts left the task fails with these
      reasons; when nothing is left to remove they are only reported, with a warning.
  returned: always
  type: list
  elements: str
  sample: ["tag prod-stable", "namespace shop", "pod shop/web-5d9c7-x2x4q",
           "stable gateway Service istio-gateways/istio-ingressgateway selects it"]
objects:
  description: The Kubernetes objects deleted directly (not through Helm), as C(namespace/Kind/name).
  returned: always
  type: list
  elements: str
  sample: ["istio-gateways/ConfigMap/istio-1-30-3"]
"""

import json
import os
import tempfile

from ansible_collections.meshfleet.istio.plugins.module_utils import revision_prune as prune_logic
from ansible_collections.meshfleet.istio.plugins.module_utils.converge import Changes
from ansible_collections.meshfleet.istio.plugins.module_utils.helm import Helm
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import check_revision_name

ARGUMENT_SPEC = dict(
    revision=dict(type="str", required=True),
    istio_namespace=dict(type="str", default="istio-system"),
    binary_path=dict(type="path", default="helm"),
)


def kubeconfig_file(module, kubeconfig):
    """helm needs a file: a kubeconfig given as a dict is written to a temporary one."""
    if not isinstance(kubeconfig, dict):
        return kubeconfig
    handle, path = tempfile.mkstemp(suffix=".json", prefix="meshfleet-kubeconfig-")
    with os.fdopen(handle, "w") as out:
        json.dump(kubeconfig, out)
    module.add_cleanup_file(path)
    return path


def make_helm(module, cluster):
    """Helm through the AnsibleModule inside AnsibleK8SModule (run_command, get_bin_path),
    its uninstalls made under the cluster's run lock."""
    base = getattr(module, "_module", module)
    kubeconfig, context = prune_logic.helm_connection(module.params)
    binary = base.get_bin_path(module.params["binary_path"], required=True)
    return Helm(base, binary, kubeconfig_file(base, kubeconfig), context,
                before_write=cluster.before_write, api=cluster.api)


def run(module, cluster):
    try:
        return prune_revision(module, cluster)
    except prune_logic.PruneError as error:
        error.result["revision"] = module.params["revision"]
        raise


def prune_revision(module, cluster):
    params = module.params
    revision = check_revision_name(params["revision"])
    helm = make_helm(module, cluster)
    changes = Changes()
    state = prune_logic.read_state(cluster, revision, params["istio_namespace"])
    removed, in_use, diffs = prune_logic.prune(cluster, helm, changes, state, revision,
                                               params["istio_namespace"], diff=module._diff)
    if in_use:
        module.warn("revision %s has nothing left to remove, but is still named by: %s"
                    % (revision, "; ".join(in_use)))
    result = changes.result(module, revision=revision, removed=removed, in_use=in_use)
    result["changed"] = bool(removed)
    if module._diff:
        result["diff"] = diffs
    return result


def main():
    run_module(k8s_module(ARGUMENT_SPEC), run)


if __name__ == "__main__":
    main()
