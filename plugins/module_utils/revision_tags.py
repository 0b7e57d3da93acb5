# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The objects of a revision tag, rendered as Istio's istiod chart renders them
(templates/revision-tags-mwc.yaml and, from 1.28, revision-tags-svc.yaml), plus what
`istioctl tag set default` adds: the default validator and the neutralised legacy injector.

Pure functions; tests compare them with `helm template` of the real charts.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import (
    LEGACY_INJECTOR,
    REV_LABEL,
    TAG_LABEL,
    VALIDATOR,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.injectors import NEVER_MATCH
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import HELM_RESOURCE_POLICY

MANAGED_BY = {"app.kubernetes.io/managed-by": "meshfleet"}
POD_RULES = [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
              "resources": ["pods"]}]
NOT_DISABLED = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
VALIDATED_GROUPS = ["security.istio.io", "networking.istio.io", "telemetry.istio.io",
                    "extensions.istio.io"]


def webhook_configuration_name(tag, istio_namespace):
    if istio_namespace == "istio-system":
        return "istio-revision-tag-%s" % tag
    return "istio-revision-tag-%s-%s" % (tag, istio_namespace)


def tag_service_name(tag):
    return "istiod-revision-tag-%s" % tag


def _injector(prefix, revision, istio_namespace, namespace_selector, object_selector):
    return {
        "name": "%ssidecar-injector.istio.io" % prefix,
        "clientConfig": {"service": {"name": "istiod-%s" % revision,
                                     "namespace": istio_namespace,
                                     "path": "/inject", "port": 443}},
        "sideEffects": "None",
        "rules": POD_RULES,
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "admissionReviewVersions": ["v1"],
        "namespaceSelector": namespace_selector,
        "objectSelector": object_selector,
    }


def _exists(key):
    return {"key": key, "operator": "DoesNotExist"}


def _in(key, value):
    return {"key": key, "operator": "In", "values": [value]}


def tag_webhooks(tag, revision, istio_namespace):
    hooks = [
        _injector("rev.namespace.", revision, istio_namespace,
                  {"matchExpressions": [_in(REV_LABEL, tag), _exists("istio-injection")]},
                  {"matchExpressions": [NOT_DISABLED]}),
        _injector("rev.object.", revision, istio_namespace,
                  {"matchExpressions": [_exists(REV_LABEL), _exists("istio-injection")]},
                  {"matchExpressions": [NOT_DISABLED, _in(REV_LABEL, tag)]}),
    ]
    if tag == "default":
        hooks += [
            _injector("namespace.", revision, istio_namespace,
                      {"matchExpressions": [_in("istio-injection", "enabled")]},
                      {"matchExpressions": [NOT_DISABLED]}),
            _injector("object.", revision, istio_namespace,
                      {"matchExpressions": [_exists("istio-injection"), _exists(REV_LABEL)]},
                      {"matchExpressions": [_in("sidecar.istio.io/inject", "true"),
                                            _exists(REV_LABEL)]}),
        ]
    return hooks


def _tag_labels(tag, revision, app):
    labels = {TAG_LABEL: tag, REV_LABEL: revision, "app": app,
              "app.kubernetes.io/name": "istiod", "operator.istio.io/component": "Pilot"}
    labels.update(MANAGED_BY)
    return labels


def tag_webhook_configuration(tag, revision, istio_namespace="istio-system"):
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": webhook_configuration_name(tag, istio_namespace),
                     "labels": _tag_labels(tag, revision, "sidecar-injector")},
        "webhooks": tag_webhooks(tag, revision, istio_namespace),
    }


def tag_service(tag, revision, istio_namespace="istio-system"):
    labels = _tag_labels(tag, revision, "istiod")
    labels["istio"] = "pilot"
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": tag_service_name(tag), "namespace": istio_namespace,
                     "labels": labels},
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": {"app": "istiod", REV_LABEL: revision},
        },
    }


def default_validator_target(revision, istio_namespace="istio-system"):
    """The fields of istiod-default-validator that follow the default tag.

    The base chart renders the same object from its defaultRevision value; the istiod role keeps
    that value equal to the default tag, so both writers agree. caBundle and failurePolicy are
    istiod's to patch and are left out on purpose.
    """
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VALIDATOR, "labels": {REV_LABEL: revision}},
        "webhooks": [{
            "name": "validation.istio.io",
            "clientConfig": {"service": {"name": "istiod-%s" % revision,
                                         "namespace": istio_namespace, "path": "/validate"}},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": VALIDATED_GROUPS,
                       "apiVersions": ["*"], "resources": ["*"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }],
    }


def neutralised_legacy_injector(live):
    """The legacy non-revisioned injector with selectors that never match (as istioctl does)."""
    hooks = []
    for hook in live.get("webhooks") or []:
        hooks.append({"name": hook["name"], "namespaceSelector": NEVER_MATCH,
                      "objectSelector": NEVER_MATCH})
    return {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": LEGACY_INJECTOR}, "webhooks": hooks}


def tag_objects(tag, revision, istio_namespace="istio-system", with_service=True):
    """Every object `tag` needs when it points at `revision`."""
    objects = [tag_webhook_configuration(tag, revision, istio_namespace)]
    if with_service:
        objects.append(tag_service(tag, revision, istio_namespace))
    return objects


class TagError(MeshfleetError, ValueError):
    """A tag operation meshfleet refuses, with the way out in its message."""


def check_tag_move(snapshot, tag, revision, overwrite, revision_may_be_missing=False):
    """Refusals of `istioctl tag set`. In check mode the revision may be one an earlier step
    would install."""
    if tag != "default" and tag in snapshot.revisions:
        raise TagError("tag %r has the name of an installed revision; choose another name "
                       "(tags such as prod-stable, prod-canary)" % tag)
    if revision not in snapshot.revisions and not revision_may_be_missing:
        raise TagError("revision %r is not installed (installed: %s)"
                       % (revision, ", ".join(snapshot.revision_names()) or "none"))
    current = snapshot.tags.get(tag)
    if current and current != revision and not overwrite:
        raise TagError("tag %r points at revision %s; set overwrite: true to move it to %s"
                       % (tag, current, revision))
    return current


def namespaces_using_tag(snapshot, tag):
    return sorted(ns["name"] for ns in snapshot.namespaces() if ns["rev_label"] == tag)


def has_tag_service(snapshot, revision):
    """Tag Services exist from Istio 1.28; the revision's version decides."""
    version = snapshot.revisions.get(revision, {}).get("version", "")
    parts = version.split("-")[0].split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= (1, 28)
    except (ValueError, IndexError):
        return True


def kept_from_helm(snapshot, objects):
    """`objects`, those that a Helm release rendered (an istiod release with `revisionTags`)
    annotated so that helm keeps them: meshfleet keeps the tag from now on, and upgrading or
    removing that release must not delete it."""
    rendered = {(o["kind"], o["name"]) for o in snapshot.helm_tag_objects()}
    for obj in objects:
        if (obj["kind"], obj["metadata"]["name"]) in rendered:
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations[HELM_RESOURCE_POLICY] = "keep"
    return objects


def set_tag(cluster, snapshot, changes, tag, revision, overwrite=False):
    """Create or move `tag` to `revision`; returns the revision it pointed at before."""
    previous = check_tag_move(snapshot, tag, revision, overwrite, cluster.check_mode)
    ns = snapshot.istio_namespace
    with_service = has_tag_service(snapshot, revision)
    for obj in kept_from_helm(snapshot, tag_objects(tag, revision, ns, with_service)):
        changes.converge(cluster, obj)
    if not with_service:
        changes.remove(cluster, "v1", "Service", tag_service_name(tag), ns)
    if tag == "default":
        changes.converge(cluster, default_validator_target(revision, ns))
        legacy = cluster.get("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                             LEGACY_INJECTOR)
        if legacy:
            changes.converge(cluster, neutralised_legacy_injector(legacy))
    return previous


def remove_tag(cluster, snapshot, changes, tag, force=False):
    """Delete `tag`'s objects; refuses while namespaces select it, unless forced."""
    users = namespaces_using_tag(snapshot, tag)
    if users and not force:
        raise TagError("tag %r is still used by namespace(s) %s; move them to another tag "
                       "first, or set force: true" % (tag, ", ".join(users)))
    if tag == "default" and not force:
        raise TagError("tag 'default' selects the revision for istio-injection=enabled and the "
                       "validator; move it with overwrite: true instead, or set force: true")
    previous = snapshot.tags.get(tag)
    ns = snapshot.istio_namespace
    changes.remove(cluster, "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                   webhook_configuration_name(tag, ns))
    changes.remove(cluster, "v1", "Service", tag_service_name(tag), ns)
    return previous
