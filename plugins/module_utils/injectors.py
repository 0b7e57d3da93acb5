# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Which injection webhooks would give a pod its sidecar.

The invariant meshfleet keeps: every pod that asks for injection gets exactly one injector, and
that injector's revision has a Ready istiod. A namespace asks with istio-injection=enabled or,
without an istio-injection label, with istio.io/rev=<revision or tag>. The webhooks are read as
the apiserver reads them (label_selector.webhook_selects: an omitted selector selects
everything); a webhook whose selectors never match (a neutralised legacy injector) is inactive.

Pure: everything here reads plain dicts.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import (
    INJECT_LABEL,
    INJECTION_LABEL,
    REV_LABEL,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    annotations_of,
    labels_of,
    meta_of,
    spec_of,
    status_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import (
    webhook_selects,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.pod_readiness import (
    is_terminating,
)

INJECTOR_HOOK = "sidecar-injector.istio.io"
SIDECAR_STATUS = "sidecar.istio.io/status"
NEVER_MATCH = {"matchExpressions": [{"key": "istio.io/deactivated", "operator": "In",
                                     "values": ["never-match"]}]}


def is_neutralised(hook):
    return hook.get("namespaceSelector") == NEVER_MATCH or hook.get("objectSelector") == NEVER_MATCH


def served_revision(hook):
    """The revision whose istiod a webhook calls: istiod-<rev>, or `default` for istiod."""
    name = ((hook.get("clientConfig") or {}).get("service") or {}).get("name", "")
    if name == "istiod":
        return "default"
    return name[len("istiod-"):] if name.startswith("istiod-") else ""


def injector_hooks(mutating_webhooks):
    """The active sidecar-injector webhooks, each with its configuration and revision."""
    hooks = []
    for configuration in mutating_webhooks:
        for hook in configuration.get("webhooks") or []:
            if INJECTOR_HOOK in hook.get("name", "") and not is_neutralised(hook):
                hooks.append({"configuration": meta_of(configuration)["name"],
                              "revision": served_revision(hook),
                              "namespace_selector": hook.get("namespaceSelector"),
                              "object_selector": hook.get("objectSelector")})
    return hooks


def injectors_of(hooks, namespace_labels, pod_labels):
    """(configuration, revision) of every webhook configuration that would inject a pod with
    `pod_labels` in a namespace with `namespace_labels`, sorted."""
    return sorted({(hook["configuration"], hook["revision"]) for hook in hooks
                   if webhook_selects(hook["namespace_selector"], namespace_labels)
                   and webhook_selects(hook["object_selector"], pod_labels)})


def asks_for_injection(namespace_labels):
    """Whether a namespace's labels ask for a sidecar in its pods."""
    injection = namespace_labels.get(INJECTION_LABEL)
    if injection is not None:
        return injection == "enabled"
    return bool(namespace_labels.get(REV_LABEL))


def has_sidecar(pod):
    annotations = annotations_of(pod)
    return REV_LABEL in annotations or SIDECAR_STATUS in annotations


def wants_sidecar(pod):
    """A running pod that did not opt out (sidecar.istio.io/inject=false, host network)."""
    return (labels_of(pod).get(INJECT_LABEL) != "false"
            and not spec_of(pod).get("hostNetwork")
            and status_of(pod).get("phase") not in ("Succeeded", "Failed")
            and not is_terminating(pod))


def pods_without_sidecar(pods, namespace):
    """Names of the pods of `namespace` that want a sidecar and run without one."""
    return sorted(meta_of(pod)["name"] for pod in pods
                  if meta_of(pod).get("namespace") == namespace
                  and wants_sidecar(pod) and not has_sidecar(pod))
