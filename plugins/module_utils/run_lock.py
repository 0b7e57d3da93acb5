# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""One meshfleet run at a time per cluster: a Lease in the cluster names the run that holds it.

Scheduled fleet-wide runs overlap; the Lease makes the second one stop before it writes.
Writes carry the Lease's resourceVersion, so two runs racing for it cannot both win.
"""

from __future__ import annotations

import datetime

LEASE_API = "coordination.k8s.io/v1"
LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "meshfleet-run-lock"


class LockHeld(Exception):
    """Another run holds the lock."""


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def _stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp):
    """Kubernetes MicroTime (2026-11-26T13:15:00.123456Z) or Time (no fraction)."""
    stamp = stamp.rstrip("Z")
    layout = "%Y-%m-%dT%H:%M:%S.%f" if "." in stamp else "%Y-%m-%dT%H:%M:%S"
    return datetime.datetime.strptime(stamp, layout).replace(tzinfo=datetime.timezone.utc)


def expires_at(lease):
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    if not renewed:
        return now()
    return _parse(renewed) + datetime.timedelta(seconds=spec.get("leaseDurationSeconds") or 0)


def holder_of(lease):
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or ""


def lease_body(holder, ttl, resource_version=None):
    stamp = _stamp(now())
    body = {"apiVersion": LEASE_API, "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "meshfleet"}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": ttl,
                     "acquireTime": stamp, "renewTime": stamp}}
    if resource_version:
        body["metadata"]["resourceVersion"] = resource_version
    return body


def decide_acquire(lease, holder, break_holder=None):
    """What acquiring needs: 'create', 'take' (replace a stale or broken lock), 'renew'
    (already ours). Raises LockHeld when another live run holds it.

    `break_holder` names the holder whose live lock may be taken, or several (a fleet-wide run
    that died leaves a lock under another holder on each cluster it was changing)."""
    if lease is None:
        return "create"
    current = holder_of(lease)
    if current == holder:
        return "renew"
    if expires_at(lease) <= now():
        return "take"
    if current and current in _names(break_holder):
        return "take"
    raise LockHeld(
        "another meshfleet run holds this cluster: %s (Lease %s/%s, until %s). Wait for it; if "
        "that run is dead, rerun with meshfleet_break_lock=%s (join the holders of several "
        "clusters with commas)"
        % (current, LEASE_NAMESPACE, LEASE_NAME, _stamp(expires_at(lease)), current))


def _names(holders):
    if not holders:
        return ()
    return (holders,) if isinstance(holders, str) else tuple(holders)
