# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The one in-use rule: whether a revision is in use, and by what, from one read of the mesh.

A revision is used by each tag that points at it; each namespace whose labels select it
(directly, through a tag, or istio-injection=enabled through the default tag); each pod that
has not Succeeded and that it injected (annotation istio.io/rev) or that is labelled istio.io/rev
with it or one of its tags; each Service outside the revision's own releases whose selector names
it or one of its tags; and istiod-default-validator pointing at it. Failed pods count, since a
restart would bring them back on the same revision. What goes with the revision does not count:
istiod's pods, the pods of its gateway Deployments, the Services of its releases, and a tag's own
Service (the tag is reported already).

Everything here is pure: it reads a MeshSnapshot and writes nothing.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import (
    REV_LABEL,
    STABLE_SERVICE_LABEL,
    TAG_LABEL,
    VALIDATOR,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    annotations_of,
    labels_of,
    meta_of,
    pod_template_labels,
    ref_of,
    release_of,
    spec_of,
    status_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import (
    selector_matches,
    service_selects,
)


# ------------------------------------------------------------ what belongs to the revision

def gateway_revision(deployment):
    """The revision of a gateway Deployment: its istio.io/rev label, else its pods' (the gateway
    chart labels only the pods with its `revision` value; meshfleet labels both)."""
    return (labels_of(deployment).get(REV_LABEL)
            or pod_template_labels(deployment).get(REV_LABEL, ""))


def is_gateway(deployment):
    return bool(labels_of(deployment).get("istio")) and labels_of(deployment).get("app") != "istiod"


def gateway_deployments(mesh, revision):
    """The revision's gateway Deployments: an istio label and the revision (gateway_revision),
    istiod aside."""
    return [d for d in mesh["deployments"] if is_gateway(d) and gateway_revision(d) == revision]


def istiod_deployments(mesh, revision, istio_namespace):
    return [d for d in mesh["deployments"]
            if meta_of(d).get("namespace") == istio_namespace
            and labels_of(d).get("app") == "istiod" and labels_of(d).get(REV_LABEL) == revision]


def _unique(refs):
    result = []
    for ref in refs:
        if ref not in result:
            result.append(ref)
    return result


def revision_releases(mesh, revision, istio_namespace):
    """(gateway releases, istiod releases) of a revision, as (namespace, name) pairs.

    istiod's is istiod-<rev> unless its Deployment names another release.
    """
    gateways = _unique(release_of(d) for d in gateway_deployments(mesh, revision))
    istiod = _unique(release_of(d) for d in istiod_deployments(mesh, revision, istio_namespace))
    return gateways, istiod or [(istio_namespace, "istiod-%s" % revision)]


def own_gateway_pods(mesh, revision):
    """(namespace, name) of the pods of the revision's gateway Deployments: they go with it."""
    pods = set()
    for deployment in gateway_deployments(mesh, revision):
        pods |= pods_of(mesh, deployment)
    return pods


def pods_of(mesh, deployment):
    """(namespace, name) of the pods a Deployment's selector picks."""
    selector = spec_of(deployment).get("selector")
    return {ref_of(pod) for pod in mesh["pods"]
            if meta_of(pod).get("namespace") == meta_of(deployment).get("namespace")
            and selector_matches(selector, labels_of(pod))}


# ------------------------------------------------------------ the rule

def names_of(snapshot, revision):
    """The revision's name and its tags': what a label may name it by."""
    return {revision} | {tag for tag, rev in snapshot.tags.items() if rev == revision}


def using_pods(snapshot, revision):
    """The pods that use the revision, in the order of the read."""
    names = names_of(snapshot, revision)
    own = own_gateway_pods(snapshot.raw, revision)
    return [pod for pod in snapshot.raw["pods"]
            if status_of(pod).get("phase") != "Succeeded"
            and labels_of(pod).get("app") != "istiod" and ref_of(pod) not in own
            and (annotations_of(pod).get(REV_LABEL) == revision
                 or labels_of(pod).get(REV_LABEL) in names)]


def using_services(snapshot, revision):
    """Services outside the revision's releases whose selector names the revision or a tag of it,
    or selects one of its gateway pods by other labels (a hand-made `version` selector, say),
    tags' own Services aside."""
    names = names_of(snapshot, revision)
    gateways, istiod = revision_releases(snapshot.raw, revision, snapshot.istio_namespace)
    own = own_gateway_pods(snapshot.raw, revision)
    pods = [pod for pod in snapshot.raw["pods"] if ref_of(pod) in own]
    return [service for service in snapshot.raw["services"]
            if TAG_LABEL not in labels_of(service)
            and release_of(service) not in gateways + istiod
            and ((spec_of(service).get("selector") or {}).get(REV_LABEL) in names
                 or selects_any(service, pods))]


def selects_any(service, pods):
    """Whether the Service's selector picks one of `pods` (in its namespace)."""
    selector = spec_of(service).get("selector") or {}
    namespace = meta_of(service).get("namespace")
    return any(meta_of(pod).get("namespace") == namespace
               and service_selects(selector, labels_of(pod)) for pod in pods)


def service_reason(service):
    kind = "stable gateway Service" if STABLE_SERVICE_LABEL in labels_of(service) else "Service"
    return "%s %s/%s selects it" % ((kind,) + ref_of(service))


def uses_of(snapshot, revision):
    """Why a revision is in use (an empty list: nothing uses it)."""
    reasons = ["tag %s" % tag for tag, rev in sorted(snapshot.tags.items()) if rev == revision]
    reasons += ["namespace %s" % ns["name"] for ns in snapshot.namespaces()
                if ns["revision"] == revision]
    reasons += ["pod %s/%s" % ref_of(pod) for pod in using_pods(snapshot, revision)]
    if snapshot.validator()["revision"] == revision:
        reasons.append("validator %s" % VALIDATOR)
    reasons += [service_reason(service) for service in using_services(snapshot, revision)]
    return reasons
