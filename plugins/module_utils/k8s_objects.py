# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The parts of a Kubernetes object as the API returns it (a plain dict), and the Helm
annotations that say which release an object belongs to."""

from __future__ import annotations

HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
HELM_RESOURCE_POLICY = "helm.sh/resource-policy"  # "keep": helm never deletes the object


def meta_of(obj):
    return (obj or {}).get("metadata") or {}


def labels_of(obj):
    return meta_of(obj).get("labels") or {}


def annotations_of(obj):
    return meta_of(obj).get("annotations") or {}


def spec_of(obj):
    return (obj or {}).get("spec") or {}


def status_of(obj):
    return (obj or {}).get("status") or {}


def pod_template_labels(workload):
    """The labels a Deployment (or any workload) gives its pods."""
    return ((spec_of(workload).get("template") or {}).get("metadata") or {}).get("labels") or {}


def ref_of(obj):
    """(namespace, name); the namespace is None for a cluster-scoped object."""
    return (meta_of(obj).get("namespace"), meta_of(obj)["name"])


def release_of(obj):
    """(namespace, release) of the Helm release an object belongs to, by its annotations;
    objects without them are taken as named after their release."""
    annotations = annotations_of(obj)
    return (annotations.get(HELM_RELEASE_NAMESPACE) or meta_of(obj).get("namespace"),
            annotations.get(HELM_RELEASE_NAME) or meta_of(obj)["name"])


def owned_by_release(obj, releases):
    """Whether Helm installed the object as part of one of `releases` ((namespace, name) pairs)."""
    return HELM_RELEASE_NAME in annotations_of(obj) and release_of(obj) in releases
