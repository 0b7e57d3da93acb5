# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Filters over the version catalogue, so playbooks refuse bad versions before any write."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.meshfleet.istio.plugins.module_utils import catalogue, revisions


def istio_release(version):
    """Catalogue facts of an Istio version, plus the revision it installs as."""
    try:
        facts = catalogue.lookup(version)
        facts["revision"] = revisions.revision_name(version)
    except revisions.VersionError as error:
        raise AnsibleFilterError(str(error))
    return facts


def kubernetes_supported(kubernetes_version, version):
    """Why `kubernetes_version` cannot run Istio `version` (an empty string when it can)."""
    try:
        catalogue.check_kubernetes(version, kubernetes_version)
    except revisions.VersionError as error:
        return str(error)
    return ""


def chart_ref(source, chart, version):
    """kubernetes.core.helm chart arguments for `chart` of `version` from a chart source."""
    kind = (source or {}).get("type", "repository")
    if kind == "directory":
        return {"chart_ref": "%s/%s-%s.tgz" % (source["path"].rstrip("/"), chart, version)}
    if kind == "oci":
        return {"chart_ref": "%s/%s" % (source["url"].rstrip("/"), chart), "chart_version": version}
    if kind == "repository":
        return {"chart_ref": chart, "chart_repo_url": source["url"], "chart_version": version}
    raise AnsibleFilterError("chart source type %r: use repository, oci or directory" % kind)


class FilterModule(object):
    def filters(self):
        return {"istio_release": istio_release, "kubernetes_supported": kubernetes_supported,
                "chart_ref": chart_ref}
