# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The Istio versions meshfleet knows, as data (how to update it: docs/version-catalogue.md).

Kubernetes ranges come from istio.io's data/compatibility/supportStatus.yml. Patch releases of a
minor are numbered without gaps, so each minor records its newest known patch.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import (
    IstioVersion,
    VersionError,
)

# minor -> newest known patch, Kubernetes range (min, max), engines that can install it
MINORS = {
    "1.22": {"latest_patch": 8, "kubernetes": ("1.27", "1.30"), "engines": ("operator", "helm")},
    "1.23": {"latest_patch": 6, "kubernetes": ("1.27", "1.30"), "engines": ("operator", "helm")},
    "1.24": {"latest_patch": 6, "kubernetes": ("1.28", "1.31"), "engines": ("helm",)},
    "1.25": {"latest_patch": 5, "kubernetes": ("1.29", "1.32"), "engines": ("helm",)},
    "1.26": {"latest_patch": 8, "kubernetes": ("1.29", "1.33"), "engines": ("helm",)},
    "1.27": {"latest_patch": 9, "kubernetes": ("1.29", "1.33"), "engines": ("helm",)},
    "1.28": {"latest_patch": 10, "kubernetes": ("1.30", "1.34"), "engines": ("helm",)},
    "1.29": {"latest_patch": 8, "kubernetes": ("1.31", "1.35"), "engines": ("helm",)},
    "1.30": {"latest_patch": 5, "kubernetes": ("1.32", "1.36"), "engines": ("helm",)},
    "1.31": {"latest_patch": 1, "kubernetes": ("1.32", "1.36"), "engines": ("helm",)},
}

# Tag objects changed shape in 1.28: a Service per tag joined the webhook configuration.
TAG_SERVICE_SINCE = (1, 28)
# From 1.25 istiod assigns ServiceEntry addresses itself (PILOT_ENABLE_IP_AUTOALLOCATE on by
# default), and the proxy-side ISTIO_META_DNS_AUTO_ALLOCATE draws a mesh-config warning.
ISTIOD_ALLOCATES_SINCE = (1, 25)


class UnknownVersion(VersionError):
    pass


def lookup(version):
    """Catalogue facts of a version; refuses versions meshfleet does not know."""
    parsed = IstioVersion(version)
    entry = MINORS.get(parsed.minor_text)
    if entry is None:
        raise UnknownVersion(
            "Istio %s is not in meshfleet's version catalogue (known minors: %s)"
            % (parsed, ", ".join(sorted(MINORS, key=_minor_key))))
    if parsed.is_release and parsed.patch > entry["latest_patch"]:
        raise UnknownVersion(
            "Istio %s is not in meshfleet's version catalogue: the newest known %s release is "
            "%s.%d (update the catalogue to add newer patches)"
            % (parsed, parsed.minor_text, parsed.minor_text, entry["latest_patch"]))
    return {
        "version": str(parsed),
        "minor": parsed.minor_text,
        "release": parsed.is_release,
        "chart_version": str(parsed),
        "kubernetes_min": entry["kubernetes"][0],
        "kubernetes_max": entry["kubernetes"][1],
        "engines": list(entry["engines"]),
        "tag_service": parsed.minor_key >= TAG_SERVICE_SINCE,
        "dns_auto_allocation": "istiod" if parsed.minor_key >= ISTIOD_ALLOCATES_SINCE else "proxy",
    }


def check_kubernetes(version, kubernetes_version):
    """Refuse a Kubernetes version outside the Istio minor's supported range."""
    facts = lookup(version)
    k8s = _minor_key(_k8s_minor(kubernetes_version))
    if not _minor_key(facts["kubernetes_min"]) <= k8s <= _minor_key(facts["kubernetes_max"]):
        raise VersionError(
            "Kubernetes %s is outside the range Istio %s supports (%s to %s)"
            % (_k8s_minor(kubernetes_version), facts["version"], facts["kubernetes_min"],
               facts["kubernetes_max"]))
    return facts


def _k8s_minor(kubernetes_version):
    parts = str(kubernetes_version).lstrip("v").split(".")
    return "%s.%s" % (parts[0], "".join(ch for ch in parts[1] if ch.isdigit()))


def _minor_key(text):
    major, minor = text.split(".")[:2]
    return (int(major), int(minor))
