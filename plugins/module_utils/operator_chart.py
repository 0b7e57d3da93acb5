# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The objects of one revision's in-cluster IstioOperator (Istio 1.22, 1.23), as rendered by the
release's own `manifests/charts/istio-operator` chart: the IstioOperator CRD, which every
revision shares, and the objects named after the revision, which belong to that revision alone.
"""

from __future__ import annotations

CRD_NAME = "istiooperators.install.istio.io"
# What the chart renders for a revision besides the CRD, each named istio-operator-<revision>.
REVISION_KINDS = (
    ("apps/v1", "Deployment", True),
    ("v1", "ServiceAccount", True),
    ("v1", "Service", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
)


class OperatorChartError(ValueError):
    pass


def operator_name(revision):
    return "istio-operator-%s" % revision


def split_rendered(documents, revision):
    """{'shared': [the CRD], 'revision': [the revision's objects]} from the documents of
    `helm template` output.

    Refuses an object that is neither the CRD nor named after the revision: removing one
    revision must never touch what another revision also uses."""
    shared, own = [], []
    for obj in documents:
        if not obj:
            continue
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
        if kind == "CustomResourceDefinition" and name == CRD_NAME:
            shared.append(obj)
        elif name == operator_name(revision):
            own.append(obj)
        else:
            raise OperatorChartError(
                "the istio-operator chart rendered %s %s, which is neither the IstioOperator "
                "CRD nor named %s: render the chart of a 1.22 or 1.23 release"
                % (kind, name, operator_name(revision)))
    missing = sorted(set(k for _v, k, _n in REVISION_KINDS) - set(o["kind"] for o in own))
    if missing:
        raise OperatorChartError(
            "the istio-operator chart rendered no %s named %s: render the chart of a 1.22 or "
            "1.23 release" % (", ".join(missing), operator_name(revision)))
    return {"shared": shared, "revision": own}


def revision_refs(revision, namespace):
    """Bare definitions of every object named after the revision (to remove that revision)."""
    refs = []
    for api_version, kind, namespaced in REVISION_KINDS:
        metadata = {"name": operator_name(revision)}
        if namespaced:
            metadata["namespace"] = namespace
        refs.append({"apiVersion": api_version, "kind": kind, "metadata": metadata})
    return refs
