# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The labels and object names by which Istio (and meshfleet's stable gateway Services) tie
objects to revisions."""

from __future__ import annotations

REV_LABEL = "istio.io/rev"
TAG_LABEL = "istio.io/tag"
INJECTION_LABEL = "istio-injection"
INJECT_LABEL = "sidecar.istio.io/inject"
STABLE_SERVICE_LABEL = "meshfleet.io/stable-gateway"
VALIDATOR = "istiod-default-validator"
LEGACY_INJECTOR = "istio-sidecar-injector"

# What the IstioOperator (istioctl install and the in-cluster operator) puts on what it makes.
OPERATOR_OWNER_LABEL = "install.operator.istio.io/owning-resource"
OPERATOR_OWNER_NAMESPACE_LABEL = "install.operator.istio.io/owning-resource-namespace"
OPERATOR_VERSION_LABEL = "operator.istio.io/version"
ISTIO_OPERATOR_API = "install.istio.io/v1alpha1"
ISTIO_OPERATOR_CRD = "istiooperators.install.istio.io"
