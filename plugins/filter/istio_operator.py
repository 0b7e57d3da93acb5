# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The operator engine's IstioOperators (plugins/module_utils/istio_operator_spec.py)."""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils import istio_operator_spec


def control_plane_operator(chart_values, revision, version, namespace, hub="", with_base=False):
    """The control plane's IstioOperator of a revision, from the istiod chart values."""
    return istio_operator_spec.control_plane(revision, version, namespace, chart_values,
                                             hub=hub, with_base=with_base)


def gateway_operator(gateway, revision, version, namespace, labels, ports, autoscale,
                     resources, istio_namespace="istio-system", env=None, global_values=None,
                     hub=""):
    """The IstioOperator of one gateway (an entry of gateways_list) of a revision."""
    return istio_operator_spec.gateway(
        gateway["name"], gateway["kind"], revision, version, namespace, istio_namespace, labels,
        ports, autoscale, resources, env=env, global_values=global_values, hub=hub)


class FilterModule(object):
    def filters(self):
        return {"control_plane_operator": control_plane_operator,
                "gateway_operator": gateway_operator}
