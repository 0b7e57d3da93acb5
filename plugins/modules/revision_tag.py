#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: revision_tag
short_description: Create, move or remove an Istio revision tag
version_added: 0.1.0
description:
  - Writes the objects C(istioctl tag set) writes, rendered as the istiod chart renders them,
    the MutatingWebhookConfiguration C(istio-revision-tag-<tag>) and, for revisions of Istio 1.28
    and later, the Service C(istiod-revision-tag-<tag>).
  - For the C(default) tag it also points C(istiod-default-validator) at the revision (keeping it in
    step with the base chart's C(defaultRevision)) and neutralises a legacy non-revisioned
    C(istio-sidecar-injector) configuration, as istioctl does.
  - Reads first and writes only what differs, so an unchanged tag sends no write request.
    C(caBundle) and the validator's C(failurePolicy) belong to istiod and are never written.
attributes:
  check_mode:
    support: full
    description: The tag's objects are sent as server-side dry runs; the result predicts the change.
  diff_mode:
    support: full
    description: Returns each of the tag's objects that changes, before and after.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
  - meshfleet.istio.istio_namespace
options:
  tag:
    description:
      - Name of the tag, a DNS-1123 label. It may not be the name of an installed revision
        (except C(default)).
    type: str
    required: true
  revision:
    description:
      - Revision the tag points at, for example C(1-31-0). Required when I(state=present).
    type: str
  state:
    description: Whether the tag exists.
    type: str
    choices: [present, absent]
    default: present
  overwrite:
    description:
      - Allow moving a tag that already points at another revision.
    type: bool
    default: false
  force:
    description:
      - Remove the tag although namespaces still select it, or remove the C(default) tag.
    type: bool
    default: false
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Point prod-stable at the installed revision
  meshfleet.istio.revision_tag:
    tag: prod-stable
    revision: 1-31-0

- name: Promote the canary revision
  meshfleet.istio.revision_tag:
    tag: prod-stable
    revision: 1-31-1
    overwrite: true

- name: Remove the canary tag once nothing selects it
  meshfleet.istio.revision_tag:
    tag: prod-canary
    state: absent
"""

RETURN = r"""
tag:
  description: The tag.
  returned: always
  type: str
  sample: prod-stable
revision:
  description: The revision the tag points at after the task (null once removed).
  returned: always
  type: str
  sample: 1-31-0
previous_revision:
  description: The revision the tag pointed at before the task (null if it did not exist).
  returned: always
  type: str
  sample: 1-30-3
objects:
  description: The objects the task wrote or deleted, as C(Kind/name) or C(namespace/Kind/name).
  returned: always
  type: list
  elements: str
  sample: ["MutatingWebhookConfiguration/istio-revision-tag-prod-stable"]
"""

from ansible_collections.meshfleet.istio.plugins.module_utils import mesh_snapshot, revision_tags
from ansible_collections.meshfleet.istio.plugins.module_utils.converge import Changes
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import check_revision_name

ARGUMENT_SPEC = dict(
    tag=dict(type="str", required=True),
    revision=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    overwrite=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
    istio_namespace=dict(type="str", default="istio-system"),
)


def run(module, cluster):
    params = module.params
    check_revision_name(params["tag"])
    snapshot = mesh_snapshot.MeshSnapshot(
        mesh_snapshot.read_cluster(cluster, params["istio_namespace"]))
    changes = Changes()
    if params["state"] == "absent":
        previous = revision_tags.remove_tag(cluster, snapshot, changes, params["tag"],
                                            params["force"])
        return changes.result(module, tag=params["tag"], revision=None,
                              previous_revision=previous)
    revision = check_revision_name(params["revision"])
    previous = revision_tags.set_tag(cluster, snapshot, changes, params["tag"], revision,
                                     params["overwrite"])
    return changes.result(module, tag=params["tag"], revision=revision, previous_revision=previous)


def main():
    module = k8s_module(ARGUMENT_SPEC, required_if=[("state", "present", ["revision"])])
    run_module(module, run)


if __name__ == "__main__":
    main()
