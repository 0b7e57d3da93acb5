# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Removing an old revision, only once nothing uses it.

A revision is its istiod release (istiod-<rev> in the Istio namespace), its gateways' releases
(the Deployments labelled istio.io/rev=<rev> with an istio label; the release is the one in the
Deployment's Helm annotation, else the Deployment's name) and the ConfigMaps istio-<rev> that
operator-engine layouts copy into gateway namespaces. It is removed only while the in-use rule
(revision_usage.uses_of, the rule mesh_info reports) finds nothing that uses it.

`read_state` and `prune` talk to the API and to Helm; the rest is pure and unit-tested.
"""

from __future__ import annotations

import os

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.helm import HelmError
from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import REV_LABEL
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    labels_of,
    meta_of,
    owned_by_release,
    ref_of,
    release_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import (
    MeshSnapshot,
    read_cluster,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.revision_usage import (
    gateway_deployments,
    istiod_deployments,
    revision_releases,
    uses_of,
)

# Auth options helm has no flag for here: with them the API client and helm could reach
# different clusters.
NOT_FOR_HELM = ("host", "api_key", "username", "password", "client_cert", "client_key",
                "impersonate_user", "impersonate_groups")


class PruneError(MeshfleetError, ValueError):
    """A prune meshfleet refuses, with what stands in the way in its message (and `in_use`)."""

    def __init__(self, message, in_use=()):
        super().__init__(message, removed=[], in_use=list(in_use))
        self.in_use = list(in_use)


# ------------------------------------------------------------ reading

def read_state(cluster, revision, istio_namespace):
    """The mesh (every Service included) and the revision's ConfigMaps."""
    return {
        "mesh": read_cluster(cluster, istio_namespace),
        "config_maps": cluster.list("v1", "ConfigMap",
                                    label_selector="%s=%s" % (REV_LABEL, revision)),
    }


# ------------------------------------------------------------ what belongs to the revision

def unmanaged(mesh, revision, istio_namespace, present):
    """The revision's Deployments whose Helm release does not exist."""
    deployments = (gateway_deployments(mesh, revision)
                   + istiod_deployments(mesh, revision, istio_namespace))
    return ["Deployment %s/%s" % ref_of(d) for d in deployments if release_of(d) not in present]


def stray_way_out(mesh, revision):
    """How to remove a revision that Helm did not install, in words."""
    engine = MeshSnapshot(mesh).revisions.get(revision, {}).get("engine")
    if engine == "istioctl":
        return ("it was installed by istioctl: `istioctl uninstall --revision %s -y` removes "
                "that revision's objects and no other revision's" % revision)
    return "remove these with the tool that installed them"


def copied_config_maps(config_maps, revision, istio_namespace, releases):
    """ConfigMaps istio-<rev> outside the Istio namespace that no release to remove owns."""
    return [ref_of(cm) for cm in config_maps
            if meta_of(cm)["name"] == "istio-%s" % revision
            and labels_of(cm).get(REV_LABEL) == revision
            and meta_of(cm).get("namespace") != istio_namespace
            and not owned_by_release(cm, releases)]


def uses(state, revision):
    """Why the revision cannot go yet (empty: nothing but its own parts uses it)."""
    return uses_of(MeshSnapshot(state["mesh"]), revision)


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
    in_use = uses(state, revision)
    if not (present or strays or config_maps):
        return [], in_use, []
    if in_use:
        raise refusal(revision, in_use)
    if strays:
        raise PruneError(
            "revision %s not removed: no Helm release owns %s; meshfleet removes only what "
            "Helm installed: %s, then run again"
            % (revision, ", ".join(strays), stray_way_out(mesh, revision)))
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
