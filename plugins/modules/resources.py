#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: resources
short_description: Converge Kubernetes objects, writing only what differs
version_added: 0.1.0
description:
  - For each definition, reads the live object and compares it with the definition. Only when
    a field of the definition is missing or different (or a label listed in I(remove_labels)
    is present) does it write, with server-side apply as the C(meshfleet) field manager.
  - A run that finds everything in place sends no write request, which
    C(kubernetes.core.k8s) cannot promise (it patches existing objects on every run).
  - Used by the roles for namespaces, stable gateway Services and mesh-wide configuration.
attributes:
  check_mode:
    support: full
    description: Writes are sent as server-side dry runs; the result predicts the change.
  diff_mode:
    support: full
    description: Returns before and after of every object it changes.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
options:
  definitions:
    description:
      - Objects, each with C(apiVersion), C(kind) and C(metadata.name) (and C(metadata.namespace)
        for namespaced kinds). Only the fields given are compared and owned.
    type: list
    elements: dict
    required: true
  remove_labels:
    description:
      - Labels that must not be on the objects (for example C(istio-injection) on a namespace
        enrolled with C(istio.io/rev)). Removed with a merge patch when present.
    type: list
    elements: str
    default: []
  existing_only:
    description:
      - Change only objects that exist; one that does not exist, or is gone by the time it
        would be written, is left absent instead of created (server-side apply creates). For
        taking labels off objects that may be on their way out, such as namespaces being
        deleted.
    type: bool
    default: false
  state:
    description: C(present) converges the objects, C(absent) deletes them.
    type: str
    choices: [present, absent]
    default: present
  absent:
    description:
      - With I(state=present), objects to delete in the same task once I(definitions) are
        converged (each with C(apiVersion), C(kind) and C(metadata.name), and
        C(metadata.namespace) for namespaced kinds); one that does not exist is left as it is.
    type: list
    elements: dict
    default: []
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Enrol an application namespace with the stable tag
  meshfleet.istio.resources:
    definitions:
      - apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          labels:
            istio.io/rev: prod-stable
    remove_labels:
      - istio-injection
"""

RETURN = r"""
objects:
  description: The objects written or deleted, as C(Kind/name) or C(namespace/Kind/name).
  returned: always
  type: list
  elements: str
  sample: ["Namespace/shop"]
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.converge import Changes
from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module

ARGUMENT_SPEC = dict(
    definitions=dict(type="list", elements="dict", required=True),
    remove_labels=dict(type="list", elements="str", default=[]),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    existing_only=dict(type="bool", default=False),
    absent=dict(type="list", elements="dict", default=[]),
)


def check_definition(definition):
    missing = [field for field in ("apiVersion", "kind") if not definition.get(field)]
    if not (definition.get("metadata") or {}).get("name"):
        missing.append("metadata.name")
    if missing:
        raise MeshfleetError("definition %s lacks %s" % (definition, ", ".join(missing)))


def remove(changes, cluster, definition):
    meta = definition["metadata"]
    changes.remove(cluster, definition["apiVersion"], definition["kind"], meta["name"],
                   meta.get("namespace"))


def run(module, cluster):
    changes = Changes()
    params = module.params
    for definition in params["definitions"] + params["absent"]:
        check_definition(definition)
    for definition in params["definitions"]:
        if params["state"] == "absent":
            remove(changes, cluster, definition)
        else:
            changes.converge(cluster, definition, params["remove_labels"],
                             params["existing_only"])
    if params["state"] == "present":
        for definition in params["absent"]:
            remove(changes, cluster, definition)
    return changes.result(module)


def main():
    run_module(k8s_module(ARGUMENT_SPEC), run)


if __name__ == "__main__":
    main()
