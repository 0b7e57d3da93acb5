# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The canary clusters the canary gate reads, each with its own kubeconfig and context."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def canary_clusters(items, hostvars=None):
    """[{name, context, kubeconfig}] from inventory host names (with `hostvars`: each host's
    meshfleet_context and meshfleet_kubeconfig), or from meshfleet_canary_contexts entries
    (a context, or {context, kubeconfig, name}; without kubeconfig, the reading host's own)."""
    clusters = []
    for item in items or []:
        if hostvars is not None:
            host = hostvars[item]
            if "meshfleet_context" not in host:
                raise AnsibleFilterError(
                    "canary cluster %s has no meshfleet_context: set meshfleet_kubeconfig and "
                    "meshfleet_context for it in the inventory" % item)
            clusters.append({"name": str(item), "context": host["meshfleet_context"],
                             "kubeconfig": host.get("meshfleet_kubeconfig") or None})
        elif isinstance(item, str):
            clusters.append({"name": item, "context": item, "kubeconfig": None})
        elif isinstance(item, dict) and item.get("context"):
            clusters.append({"name": item.get("name") or item["context"],
                             "context": item["context"],
                             "kubeconfig": item.get("kubeconfig") or None})
        else:
            raise AnsibleFilterError(
                "meshfleet_canary_contexts entry %r: use a context name, or {context, kubeconfig}"
                % (item,))
    return clusters


class FilterModule(object):
    def filters(self):
        return {"canary_clusters": canary_clusters}
