# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Filters that turn names into Kubernetes object definitions for meshfleet.istio.resources."""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    HELM_RELEASE_NAME,
    HELM_RELEASE_NAMESPACE,
    HELM_RESOURCE_POLICY,
)


def namespace_objects(names, labels=None):
    """Namespace definitions for `names`, each with `labels` (if any)."""
    objects = []
    for name in names:
        metadata = {"name": name}
        if labels:
            metadata["labels"] = dict(labels)
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
    return objects


def object_refs(items, api_version, kind):
    """Bare definitions (name and namespace only) of `kind` for items with name/namespace."""
    objects = []
    for item in items:
        metadata = {"name": item["name"]}
        if item.get("namespace"):
            metadata["namespace"] = item["namespace"]
        objects.append({"apiVersion": api_version, "kind": kind, "metadata": metadata})
    return objects


def crd_adoptions(istio_crds, release, namespace):
    """Ownership metadata that hands Istio's CRDs (mesh_info's `istio_crds`) not yet owned by
    `release` in `namespace` over to that Helm release."""
    return [{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
             "metadata": {"name": crd["name"],
                          "labels": {"app.kubernetes.io/managed-by": "Helm"},
                          "annotations": {HELM_RELEASE_NAME: release,
                                          HELM_RELEASE_NAMESPACE: namespace}}}
            for crd in istio_crds
            if (crd["helm_release"], crd["helm_release_namespace"]) != (release, namespace)]


def helm_keep(objects):
    """The annotation that makes helm keep objects (mesh_info's `helm_tag_objects`) when their
    release no longer renders them, as definitions of those objects."""
    definitions = []
    for obj in objects:
        metadata = {"name": obj["name"], "annotations": {HELM_RESOURCE_POLICY: "keep"}}
        if obj.get("namespace"):
            metadata["namespace"] = obj["namespace"]
        definitions.append({"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                            "metadata": metadata})
    return definitions


class FilterModule(object):
    def filters(self):
        return {"namespace_objects": namespace_objects, "object_refs": object_refs,
                "crd_adoptions": crd_adoptions, "helm_keep": helm_keep}
