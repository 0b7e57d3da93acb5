# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The IstioOperators of the operator engine (Istio 1.22, 1.23): one per revision for the
control plane, reconciled by that revision's in-cluster operator (roles/operator), which renders
the charts compiled into it. The guide's control plane: profile minimal, every gateway disabled
(each gateway gets its own IstioOperator), HA and autoscaling through the istiod chart's `pilot`
values, which are the Helm engine's values under another key.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import (
    ISTIO_OPERATOR_API,
    REV_LABEL,
)

MANAGED_BY = {"app.kubernetes.io/managed-by": "meshfleet"}
# Chart values the Helm engine sets at the top level of the istiod chart that the 1.22/1.23
# istiod chart reads under `pilot`.
PILOT_VALUE_KEYS = ("replicaCount", "autoscaleEnabled", "autoscaleMin", "autoscaleMax",
                    "rollingMaxSurge", "rollingMaxUnavailable", "cpu", "resources", "env",
                    "nodeSelector", "tolerations", "podAnnotations")


def control_plane_name(revision):
    return "istiod-%s" % revision


def control_plane(revision, version, namespace, chart_values, hub="", with_base=False):
    """The IstioOperator of revision `revision` of Istio `version`, from the Helm engine's
    istiod chart values (`chart_values`: meshConfig, global and the pilot settings).

    `with_base`: the base component too (the Istio CRDs and istio-reader), on the first
    revision of a cluster only: two operators applying their own release's CRDs would undo each
    other. The base chart's own default validator is not rendered: the `default` tag carries
    it (the operator writes that tag after a first install; meshfleet.istio.revision_tag keeps
    and moves it)."""
    pilot = dict((key, chart_values[key]) for key in PILOT_VALUE_KEYS if key in chart_values)
    hub, global_values = _hub_and_globals(hub, chart_values.get("global"), namespace)
    values = {"global": global_values, "pilot": pilot}
    if with_base:
        values["defaultRevision"] = ""
    spec = {
        "profile": "minimal",
        "revision": revision,
        "tag": version,
        "meshConfig": chart_values.get("meshConfig") or {},
        "components": {
            "base": {"enabled": bool(with_base)},
            "pilot": {"enabled": True},
            "cni": {"enabled": False},
            "ingressGateways": [{"name": "istio-ingressgateway", "enabled": False}],
            "egressGateways": [{"name": "istio-egressgateway", "enabled": False}],
        },
        "values": values,
    }
    if hub:
        spec["hub"] = hub
    return {
        "apiVersion": ISTIO_OPERATOR_API, "kind": "IstioOperator",
        "metadata": {"name": control_plane_name(revision), "namespace": namespace,
                     "labels": dict(MANAGED_BY, **{REV_LABEL: revision})},
        "spec": spec,
    }


def _hub_and_globals(hub, global_values, istio_namespace):
    """The image hub (`hub`, else `global.hub`) as the IstioOperator's spec.hub, and the
    global values without it, telling istiod's namespace."""
    values = dict(global_values or {}, istioNamespace=istio_namespace)
    global_hub = values.pop("hub", "")
    return hub or global_hub, values


def is_meshfleets(istio_operator):
    labels = (istio_operator.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in MANAGED_BY.items())


# Gateway kinds of the gateways role -> the IstioOperator component list that installs them.
GATEWAY_COMPONENTS = {"ingress": "ingressGateways", "eastwest": "ingressGateways",
                      "egress": "egressGateways"}


def gateway_name(gateway, revision):
    return "%s-%s" % (gateway, revision)


def gateway(name, kind, revision, version, namespace, istio_namespace, labels, service_ports,
            autoscale, resources, env=None, global_values=None, hub=""):
    """The IstioOperator of gateway `name` (kind ingress, egress or eastwest) of `revision`:
    profile empty, one enabled gateway component, Deployment and Service
    `<name>-<revision>` in `namespace` with `labels` on its pods, its own Service of type
    ClusterIP with `service_ports` (the stable Service is meshfleet's), the HPA of `autoscale`
    ({min, max, cpu_percent}), and the `gateway` injection template."""
    component_name = gateway_name(name, revision)
    k8s = {
        "service": {"type": "ClusterIP", "ports": list(service_ports)},
        "hpaSpec": {
            "minReplicas": int(autoscale["min"]), "maxReplicas": int(autoscale["max"]),
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": component_name},
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization",
                                          "averageUtilization": int(autoscale["cpu_percent"])}}}],
        },
        "resources": resources,
    }
    if env:
        k8s["env"] = [{"name": key, "value": value} for key, value in sorted(env.items())]
    component = {"name": component_name, "namespace": namespace, "enabled": True,
                 "label": dict(labels), "k8s": k8s}
    hub, global_values = _hub_and_globals(hub, global_values, istio_namespace)
    values = {"global": global_values,
              "gateways": {"istio-%sgateway" % ("egress" if kind == "egress" else "ingress"):
                           {"injectionTemplate": "gateway"}}}
    spec = {"profile": "empty", "revision": revision, "tag": version,
            "components": {GATEWAY_COMPONENTS[kind]: [component]}, "values": values}
    if hub:
        spec["hub"] = hub
    return {
        "apiVersion": ISTIO_OPERATOR_API, "kind": "IstioOperator",
        "metadata": {"name": component_name, "namespace": namespace,
                     "labels": dict(MANAGED_BY, **{REV_LABEL: revision})},
        "spec": spec,
    }
