#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_release
short_description: Install or upgrade a Helm release only when its chart or values differ
version_added: 0.1.0
description:
  - Reads the release (C(helm get metadata), C(helm get values)) and deploys with
    C(helm upgrade --install) only when the chart version or the values differ, or the release
    is not deployed. An unchanged release costs reads only.
  - In diff mode the diff is the release's current manifest against the manifest the wanted
    chart and values render to, so check mode with diff shows every object that would change,
    without the helm-diff plugin.
  - A release left C(pending-upgrade) or C(pending-rollback) by an interrupted run is rolled back
    to its last deployed revision first, and one left C(pending-install) (or a failed first
    install) is removed, so a rerun converges.
attributes:
  check_mode:
    support: full
    description: Reads and renders only; reports whether the release would change.
  diff_mode:
    support: full
    description: Current against rendered manifest.
extends_documentation_fragment:
  - meshfleet.istio.module
options:
  release_name:
    description: Name of the release.
    type: str
    required: true
  release_namespace:
    description: Namespace of the release.
    type: str
    required: true
  chart_ref:
    description: Chart reference (a name with I(chart_repo_url), an C(oci://) reference or a path).
    type: str
  chart_repo_url:
    description: Chart repository URL.
    type: str
  chart_version:
    description: Chart version; read from the chart when not given.
    type: str
  values:
    description: Values of the release.
    type: dict
    default: {}
  state:
    description: Whether the release exists.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - Wait until the release's objects are ready (C(helm --wait)).
      - With O(state=absent), wait until they are deleted (C(helm uninstall --wait)).
    type: bool
    default: false
  wait_timeout:
    description: How long to wait, as a Helm duration.
    type: str
    default: 5m0s
  take_ownership:
    description:
      - Adopt objects the chart renders that exist without this release's ownership metadata
        (C(helm --take-ownership), Helm 3.17 or later), such as those C(istioctl install) made.
        Without it Helm refuses them ("exists and cannot be imported into the current release").
    type: bool
    default: false
  binary_path:
    description: The helm binary.
    type: path
    default: helm
  kubeconfig:
    description: Path to the kubeconfig file.
    type: path
    aliases: [kubeconfig_path]
  context:
    description: Context of the kubeconfig to use.
    type: str
    aliases: [kube_context]
requirements:
  - helm 3
"""

EXAMPLES = r"""
- name: Install istiod 1.31.0 as revision 1-31-0
  meshfleet.istio.helm_release:
    release_name: istiod-1-31-0
    release_namespace: istio-system
    chart_ref: istiod
    chart_repo_url: https://istio-release.storage.googleapis.com/charts
    chart_version: 1.31.0
    values:
      revision: 1-31-0
    wait: true
"""

RETURN = r"""
reason:
  description: Why the release was (or would be) deployed or removed; empty when unchanged.
  returned: always
  type: str
  sample: chart 1.30.5 -> 1.31.0
release:
  description: The release after the task (C(helm get metadata)), null when absent.
  returned: always
  type: dict
  sample: {"name": "istiod-1-31-0", "chart": "istiod", "version": "1.31.0", "revision": 1,
           "status": "deployed"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.helm import (
    AccessDenied,
    Chart,
    Helm,
    HelmError,
    Unreachable,
    deploy,
    needs_upgrade,
    recover_interrupted,
    remove_release,
    write_values,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import (
    RUN_LOCK_ARG_SPEC,
    run_lock_keeper,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_api import KubeApi
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_connection import (
    connection_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module

ARGUMENT_SPEC = dict(
    release_name=dict(type="str", required=True),
    release_namespace=dict(type="str", required=True),
    chart_ref=dict(type="str"),
    chart_repo_url=dict(type="str"),
    chart_version=dict(type="str"),
    values=dict(type="dict", default={}),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="str", default="5m0s"),
    take_ownership=dict(type="bool", default=False),
    binary_path=dict(type="path", default="helm"),
    kubeconfig=dict(type="path", aliases=["kubeconfig_path"]),
    context=dict(type="str", aliases=["kube_context"]),
)
ARGUMENT_SPEC.update(RUN_LOCK_ARG_SPEC)


def remove(module, helm, release, namespace):
    if helm.metadata(release, namespace) is None:
        return dict(changed=False, reason="", release=None)
    result = dict(changed=True, reason="release exists", release=None)
    if module._diff:
        result["diff"] = dict(before=helm.manifest(release, namespace), after="")
    if not module.check_mode:
        remove_release(helm, release, namespace, module.params["wait"],
                       module.params["wait_timeout"])
    return result


def converge(module, helm, release, namespace):
    params = module.params
    chart = Chart(params["chart_ref"], params["chart_repo_url"], params["chart_version"])
    wanted_version = chart.version or helm.chart_version(chart)
    metadata = helm.metadata(release, namespace)
    current_values = helm.values(release, namespace) if metadata else {}
    reason = needs_upgrade(metadata, current_values, wanted_version, params["values"])
    if not reason:
        return dict(changed=False, reason="", release=metadata)
    values_file = write_values(params["values"])
    try:
        result = dict(changed=True, reason=reason, release=metadata)
        if module._diff:
            before = helm.manifest(release, namespace) if metadata else ""
            result["diff"] = dict(before=before,
                                  after=helm.template(release, namespace, chart, values_file),
                                  before_header="%s/%s (current)" % (namespace, release),
                                  after_header="%s/%s (wanted)" % (namespace, release))
        if not module.check_mode:
            if metadata:
                recover_interrupted(helm, release, namespace, metadata)
            deploy(helm, release, namespace, chart, values_file, params["wait"],
                   params["wait_timeout"], reason, params["take_ownership"])
            result["release"] = helm.metadata(release, namespace)
        return result
    finally:
        module.cleanup(values_file)


def release_helm(module):
    """helm for the task's cluster, reading releases through one connection that also holds
    the run lock."""
    params = module.params
    binary = module.get_bin_path(params["binary_path"], required=True)
    api = KubeApi(connection_of(dict(kubeconfig=params["kubeconfig"], context=params["context"])))
    keeper = run_lock_keeper(module, api)
    return Helm(module, binary, params["kubeconfig"], params["context"],
                before_write=keeper.before_write if keeper else None, api=api)


def apply_state(module):
    params = module.params
    helm = release_helm(module)
    release, namespace = params["release_name"], params["release_namespace"]
    try:
        if params["state"] == "absent":
            return remove(module, helm, release, namespace)
        return converge(module, helm, release, namespace)
    except AccessDenied as error:
        raise MeshfleetError(str(error), status=403) from error
    except Unreachable:  # its message names the cluster and what to check
        raise
    except HelmError as error:
        raise HelmError("%s/%s: %s" % (namespace, release, error)) from error


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[("state", "present", ["chart_ref"])])
    run_module(module, apply_state, connect=None)


if __name__ == "__main__":
    main()
