# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Removing an old revision, only once nothing uses it.

A revision is its istiod release (istiod-<rev> in the Istio namespace), its gateways' releases
(the Deployments labelled istio.io/rev=<rev> with an istio label; the release is the one in the
Deployment's Helm annotation, else the Deployment's name) and the ConfigMaps istio-<rev> that
operator-engine layouts copy into gateway namespaces. It is in use while MeshSnapshot.uses_of
finds a use other than its own gateway pods, or a Service outside its releases (a stable gateway
Service above all) selects its pods.

`read_state` and `prune` talk to the API and to Helm; the rest is pure and unit-tested.
"""

from __future__ import annotations

import os

from ansible_collections.meshfleet.istio.plugins.module_utils.helm import HelmError
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import (
    REV_LABEL,
    STABLE_SERVICE_LABEL,
    TAG_LABEL,
    MeshSnapshot,
    read_cluster,
)

RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
# Auth options helm has no flag for here: with them the API client and helm could reach
# different clusters.
NOT_FOR_HELM = ("host", "api_key", "username", "password", "client_cert", "client_key",
                "impersonate_user", "impersonate_groups")


class PruneError(ValueError):
    """A prune meshfleet refuses, with what stands in the way in its message (and `in_use`)."""

    def __init__(self, message, in_use=()):
        super(PruneError, self).__init__(message)
        self.in_use = list(in_use)


def _meta(obj):
    return obj.get("metadata") or {}


def _labels(obj):
    return _meta(obj).get("labels") or {}


def _ref(obj):
    return (_meta(obj).get("namespace"), _meta(obj)["name"])


# ------------------------------------------------------------ reading

def read_state(cluster, revision, istio_namespace):
    """The mesh, every Service (for selectors that name the revision), the revision's ConfigMaps."""
    return {
        "mesh": read_cluster(cluster, istio_namespace),
        "services": cluster.list("v1", "Service"),
        "config_maps": cluster.list("v1", "ConfigMap",
                                    label_selector="%s=%s" % (REV_LABEL, revision)),
    }


# ------------------------------------------------------------ what belongs to the revision

def selects(selector, labels):
    """Whether a Kubernetes label selector (matchLabels, matchExpressions) selects `labels`."""
    selector = selector or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression_holds(expr, labels) for expr in selector.get("matchExpressions") or [])


def _expression_holds(expr, labels):
    operator, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    return key not in labels  # DoesNotExist


def gateway_deployments(mesh, revision):
    """The revision's gateway Deployments: istio.io/rev=<rev> and an istio label, istiod aside."""
    return [d for d in mesh["deployments"]
            if _labels(d).get(REV_LABEL) == revision and _labels(d).get("istio")
            and _labels(d).get("app") != "istiod"]


def istiod_deployments(mesh, revision, istio_namespace):
    return [d for d in mesh["deployments"]
            if _meta(d).get("namespace") == istio_namespace and _labels(d).get("app") == "istiod"
            and _labels(d).get(REV_LABEL) == revision]


def release_of(obj):
    """(namespace, release) of the Helm release an object belongs to, by its annotations;
    objects without them are taken as named after their release."""
    annotations = _meta(obj).get("annotations") or {}
    return (annotations.get(RELEASE_NAMESPACE) or _meta(obj).get("namespace"),
            annotations.get(RELEASE_NAME) or _meta(obj)["name"])


def owned_by(obj, releases):
    annotations = _meta(obj).get("annotations") or {}
    return RELEASE_NAME in annotations and release_of(obj) in releases


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


def unmanaged(mesh, revision, istio_namespace, present):
    """The revision's Deployments whose Helm release does not exist."""
    deployments = (gateway_deployments(mesh, revision)
                   + istiod_deployments(mesh, revision, istio_namespace))
    return ["Deployment %s/%s" % _ref(d) for d in deployments if release_of(d) not in present]


def copied_config_maps(config_maps, revision, istio_namespace, releases):
    """ConfigMaps istio-<rev> outside the Istio namespace that no release to remove owns."""
    return [_ref(cm) for cm in config_maps
            if _meta(cm)["name"] == "istio-%s" % revision
            and _labels(cm).get(REV_LABEL) == revision
            and _meta(cm).get("namespace") != istio_namespace
            and not owned_by(cm, releases)]


def own_pods(mesh, revision):
    """(namespace, name) of the pods of the revision's gateway Deployments: they go with it."""
    pods = set()
    for deployment in gateway_deployments(mesh, revision):
        selector = (deployment.get("spec") or {}).get("selector")
        for pod in mesh["pods"]:
            if (_meta(pod).get("namespace") == _meta(deployment).get("namespace")
                    and selects(selector, _labels(pod))):
                pods.add(_ref(pod))
    return pods


# ------------------------------------------------------------ the in-use rule

def service_uses(services, names, releases):
    """Services outside the revision's releases whose selector names the revision or a tag of it.

    A tag's own Service (labelled istio.io/tag) is left out: the tag is reported already.
    """
    reasons = []
    for service in services:
        selector = (service.get("spec") or {}).get("selector") or {}
        if (selector.get(REV_LABEL) not in names or TAG_LABEL in _labels(service)
                or owned_by(service, releases)):
            continue
        kind = ("stable gateway Service" if STABLE_SERVICE_LABEL in _labels(service)
                else "Service")
        reasons.append("%s %s/%s selects it" % ((kind,) + _ref(service)))
    return reasons


def uses(state, revision, releases):
    """Why the revision cannot go yet (empty: nothing but its own parts uses it)."""
    snapshot = MeshSnapshot(state["mesh"])
    names = {revision} | {tag for tag, rev in snapshot.tags.items() if rev == revision}
    return (snapshot.uses_of(revision, ignore_pods=own_pods(state["mesh"], revision))
            + service_uses(state["services"], names, releases))


def refusal(revision, reasons):
    return PruneError(
        "revision %s is still in use, not removed: %s. Move tags, namespaces and stable gateway "
        "Services to another revision and restart the pods first" % (revision, "; ".join(reasons)),
        reasons)


# ------------------------------------------------------------ helm

def helm_connection(params, environ=None):
    """kubeconfig and context for helm, from the module's auth options or K8S_AUTH_* variables.

    Refuses auth options helm cannot be given, so helm and the API client reach the same cluster.
    """
    environ = os.environ if environ is None else environ
    unusable = [name for name in NOT_FOR_HELM
                if params.get(name) or environ.get("K8S_AUTH_%s" % name.upper())]
    if unusable:
        raise PruneError("revision_prune runs helm, which reaches the cluster through a kubeconfig "
                         "only: use kubeconfig and context instead of %s" % ", ".join(unusable))
    return (params.get("kubeconfig") or environ.get("K8S_AUTH_KUBECONFIG"),
            params.get("context") or environ.get("K8S_AUTH_CONTEXT"))


def installed(helm, releases):
    """The releases Helm has, of those given."""
    return [(namespace, name) for namespace, name in releases
            if helm.metadata(name, namespace) is not None]


# ------------------------------------------------------------ removing

def release_diff(helm, namespace, name):
    ref = "release %s/%s" % (namespace, name)
    return {"before": helm.manifest(name, namespace), "after": "",
            "before_header": ref, "after_header": "%s (removed)" % ref}


def prune(cluster, helm, changes, state, revision, istio_namespace, diff=False):
    """Remove the revision's releases and copied ConfigMaps when nothing else uses it.

    Returns (removed, in_use, diffs in the order of removal). A revision with nothing left is no change, even
    if something still names it (in_use tells what).
    """
    mesh = state["mesh"]
    gateways, istiod = revision_releases(mesh, revision, istio_namespace)
    present = installed(helm, gateways + istiod)
    strays = unmanaged(mesh, revision, istio_namespace, present)
    config_maps = copied_config_maps(state["config_maps"], revision, istio_namespace,
                                     gateways + istiod)
    in_use = uses(state, revision, gateways + istiod)
    if not (present or strays or config_maps):
        return [], in_use, []
    if in_use:
        raise refusal(revision, in_use)
    if strays:
        raise PruneError(
            "revision %s not removed: no Helm release owns %s; meshfleet removes only what "
            "Helm installed: remove these with the tool that installed them, then run again"
            % (revision, ", ".join(strays)))
    removed, diffs = [], []
    try:
        for namespace, name in [ref for ref in gateways if ref in present]:
            removed.append(uninstall(cluster, helm, namespace, name, diff, diffs))
        for namespace, name in config_maps:
            recorded = len(changes.diffs)
            changes.remove(cluster, "v1", "ConfigMap", name, namespace)
            if len(changes.diffs) > recorded:
                removed.append("ConfigMap %s/%s" % (namespace, name))
                diffs.extend(changes.diffs[recorded:] if diff else [])
        for namespace, name in [ref for ref in istiod if ref in present]:
            removed.append(uninstall(cluster, helm, namespace, name, diff, diffs))
    except HelmError as error:
        raise HelmError("%s (removed before the failure: %s; run again to continue)"
                        % (error, ", ".join(removed) or "nothing"))
    return removed, [], diffs


def uninstall(cluster, helm, namespace, name, diff, diffs):
    """helm uninstall --wait (in check mode only the diff)."""
    if diff:
        diffs.append(release_diff(helm, namespace, name))
    if not cluster.check_mode:
        helm.run(["uninstall", name, "-n", namespace, "--wait"])
    return "release %s/%s" % (namespace, name)
