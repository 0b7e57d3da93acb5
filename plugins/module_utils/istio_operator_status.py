# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Whether IstioOperators are installed: the operator's own status of each (`status.status`
and one entry per component) for the spec as last written, and the Deployments it made Ready.

An IstioOperator's status says nothing about which spec it describes (no observedGeneration in
1.22 or 1.23). The operator writes it through the status subresource at the start (RECONCILING)
and the end of every reconcile, so a status written at or after the spec's last write is about
that spec: managedFields record both times, to the second.
"""

from __future__ import annotations

import time

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import (
    ISTIO_OPERATOR_API,
    OPERATOR_OWNER_LABEL,
    OPERATOR_VERSION_LABEL,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    labels_of,
    meta_of,
    status_of,
)

HEALTHY = "HEALTHY"


class IstioOperatorTimeout(MeshfleetError):
    """Some IstioOperators were not installed in time; `result` holds where each stands."""


def _write_times(istio_operator):
    """(latest spec write, latest status write) as RFC 3339 strings ('' when none)."""
    spec, status = "", ""
    for entry in meta_of(istio_operator).get("managedFields") or []:
        moment = entry.get("time") or ""
        if entry.get("subresource") == "status":
            status = max(status, moment)
        else:
            spec = max(spec, moment)
    return spec, status


def reconciled(istio_operator):
    """Whether the operator wrote its status at or after the spec's last write."""
    spec, status = _write_times(istio_operator)
    return bool(status) and status >= spec


def component_errors(istio_operator):
    components = status_of(istio_operator).get("componentStatus") or {}
    return ["%s: %s%s" % (name, entry.get("status", ""),
                          " (%s)" % entry["error"] if entry.get("error") else "")
            for name, entry in sorted(components.items())
            if entry.get("status") not in (HEALTHY, None)]


def standing(name, istio_operator, deployments, version, minimum=1):
    """Where IstioOperator `name` stands (`istio_operator`: as read, None when absent): its
    status, and its Deployments (labelled as made for it) with their Ready replicas, each of
    which needs `minimum`."""
    made = [d for d in deployments if labels_of(d).get(OPERATOR_OWNER_LABEL) == name]
    entries = [{"name": meta_of(d)["name"], "namespace": meta_of(d).get("namespace"),
                "version": labels_of(d).get(OPERATOR_VERSION_LABEL, ""),
                "ready": status_of(d).get("readyReplicas") or 0} for d in made]
    found = istio_operator or {}
    status = status_of(found).get("status", "") if istio_operator else "absent"
    current = bool(istio_operator) and reconciled(found)
    installed = (status == HEALTHY and current and bool(entries)
                 and all(e["ready"] >= minimum and e["version"] == version for e in entries))
    return {"name": name, "status": status, "reconciled": current,
            "errors": component_errors(found), "message": status_of(found).get("message", ""),
            "deployments": entries, "installed": installed}


def describe(entry):
    if entry["status"] == "absent":
        return "%s does not exist" % entry["name"]
    parts = ["%s is %s" % (entry["name"], entry["status"] or (
        "not reconciled yet (no operator of its revision took it: is that revision's operator "
        "running? role meshfleet.istio.operator installs it)"))]
    if entry["status"] and not entry["reconciled"]:
        parts.append("for an earlier spec")
    parts += entry["errors"] + ([entry["message"]] if entry["message"] else [])
    parts += ["Deployment %s/%s: %d Ready, version %s" % (
        d["namespace"], d["name"], d["ready"], d["version"] or "unknown")
        for d in entry["deployments"]] or ["no Deployment made yet"]
    return ", ".join(parts)


def read_standing(cluster, wanted):
    result = []
    for item in wanted:
        found = cluster.get(ISTIO_OPERATOR_API, "IstioOperator", item["name"], item["namespace"])
        deployments = cluster.list("apps/v1", "Deployment",
                                   label_selector="%s=%s" % (OPERATOR_OWNER_LABEL, item["name"]))
        entry = standing(item["name"], found, deployments, item["version"],
                         item.get("minimum") or 1)
        entry["namespace"] = item["namespace"]
        result.append(entry)
    return result


def wait_for_installed(cluster, wanted, timeout, interval, check_mode=False, clock=time):
    """Poll until every IstioOperator of `wanted` ({name, namespace, version, minimum}) is
    installed; check mode reads once and does not wait."""
    deadline = clock.monotonic() + timeout
    while True:
        standings = read_standing(cluster, wanted)
        pending = [entry for entry in standings if not entry["installed"]]
        if not pending or check_mode:
            return standings
        if clock.monotonic() >= deadline:
            raise IstioOperatorTimeout(
                "timed out after %ss waiting for IstioOperator %s" % (
                    timeout, "; ".join(describe(e) for e in pending)),
                istio_operators=standings)
        clock.sleep(interval)
