# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""One meshfleet run at a time per cluster: a Lease in the cluster names the run that holds it.

Scheduled fleet-wide runs overlap; the Lease makes the second one stop before it writes.
The holder renews the Lease while it works, so a reader can tell a live holder (renewed
recently) from a stale one (its renewals stopped: the run died) and an expired one (taken by
the next run without being named). Writes carry the Lease's resourceVersion, so two runs racing
for it cannot both win. A released Lease is kept with no holder: its resourceVersion then
changes with every run that takes or releases it, which lets a run prove that no other run held
the cluster since it read it (the fence).

Everything here is pure; lock_keeper.py talks to the cluster.
"""

from __future__ import annotations

import datetime

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import (
    MeshfleetError,
    cluster_name,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    annotations_of,
    meta_of,
    spec_of,
)

LEASE_API = "coordination.k8s.io/v1"
LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "meshfleet-run-lock"
RENEW_ANNOTATION = "meshfleet.io/renew-seconds"
RELEASED_ANNOTATION = "meshfleet.io/released-by"
DEFAULT_TTL = 120
# A holder that missed this many renewals in a row has stopped renewing: its lock is stale.
MISSED_RENEWALS = 3


class LockError(MeshfleetError):
    """This run may not write to the cluster under its lock."""

    def message(self, params):
        return "%s: %s" % (cluster_name(params), self)


class LockHeld(LockError):
    """Another run holds the lock."""


class LockMoved(LockError):
    """Another run held the cluster since this run read it, or took this run's lock."""


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text):
    """Kubernetes MicroTime (2026-11-26T13:15:00.123456Z) or Time (no fraction)."""
    text = text.rstrip("Z")
    layout = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.datetime.strptime(text, layout).replace(tzinfo=datetime.timezone.utc)


def renew_interval(ttl):
    """How often a holder renews a lock that lasts `ttl` seconds: often enough that a stale
    lock shows within a minute, and that several renewals fit before it expires."""
    return max(1, min(20, int(ttl) // 6))


def holder_of(lease):
    return spec_of(lease).get("holderIdentity") or ""


def last_holder(lease):
    """The run that released a free Lease."""
    return annotations_of(lease).get(RELEASED_ANNOTATION, "")


def resource_version(lease):
    """The fence: the Lease's resourceVersion, '' when there is no Lease."""
    return meta_of(lease).get("resourceVersion") or ""


def _interval_of(lease):
    try:
        return int(annotations_of(lease)[RENEW_ANNOTATION])
    except (KeyError, TypeError, ValueError):
        # A Lease from a run that does not say how often it renews: a sixth of its duration.
        return max(1, int(spec_of(lease).get("leaseDurationSeconds") or 0) // 6)


def lock_state(lease, moment=None):
    """What a reader can tell of the lock: `absent` (never held), `free` (released), `live`
    (its holder renews it), `stale` (renewals stopped; only a run naming the holder takes it) or
    `expired` (the next run takes it), with the holder, the seconds since the last renewal and
    until expiry."""
    moment = moment or now()
    spec = spec_of(lease)
    state = dict(state="absent", holder="", age_seconds=0, expires_in_seconds=0,
                 renew_seconds=0, resource_version=resource_version(lease))
    if lease is None:
        return state
    holder = holder_of(lease)
    if not holder:
        state.update(state="free")
        return state
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    age = int((moment - _parse(renewed)).total_seconds()) if renewed else 0
    ttl = spec.get("leaseDurationSeconds") or 0
    interval = _interval_of(lease)
    if not renewed or age >= ttl:
        kind = "expired"
    elif age > MISSED_RENEWALS * interval:
        kind = "stale"
    else:
        kind = "live"
    state.update(state=kind, holder=holder, age_seconds=max(age, 0),
                 expires_in_seconds=max(ttl - age, 0), renew_seconds=interval)
    return state


def describe(state):
    """One line a person reads: who holds the cluster and whether that run is alive."""
    kind = state["state"]
    if kind in ("absent", "free"):
        return "free"
    return "%s, %s (renewed %ss ago, expires in %ss)" % (
        state["holder"], kind, state["age_seconds"], state["expires_in_seconds"])


def refusal(state):
    """Why this run may not take the lock, and the way out."""
    holder = state["holder"]
    if state["state"] == "stale":
        return ("another meshfleet run holds this cluster: %s, stale: its renewals stopped %ss "
                "ago (that run died or lost its controller). It expires in %ss and the next "
                "run then takes it; to take it now, rerun with meshfleet_break_lock=%s (join "
                "the holders of several clusters with commas)"
                % (holder, state["age_seconds"], state["expires_in_seconds"], holder))
    return ("another meshfleet run holds this cluster: %s, live: renewed %ss ago. Wait for it to "
            "finish. Only if you know that run is gone (its lock would go stale within %ss), "
            "rerun with meshfleet_force_break_lock=%s"
            % (holder, state["age_seconds"], MISSED_RENEWALS * state["renew_seconds"], holder))


def _names(holders):
    if not holders:
        return ()
    if isinstance(holders, str):
        holders = holders.split(",")
    return tuple(name.strip() for name in holders if name and name.strip())


def decide_acquire(lease, holder, break_holder=None, force_break_holder=None, fence=None,
                   moment=None):
    """What acquiring needs: 'create', 'take' (replace a free, expired or broken lock), 'renew'
    (already ours). Raises LockHeld when another run holds it, LockMoved when a run held the
    cluster since this run read it (`fence`: the Lease's resourceVersion then, '' for none).

    `break_holder` names the stale holders that may be taken over, `force_break_holder` the
    live ones (a fleet-wide run that died leaves a lock under another holder on each cluster).
    Forcing skips the fence: a live holder renews its Lease, and forcing accepts its writes."""
    current = holder_of(lease)
    if lease is not None and current == holder:
        return "renew"
    if current and current in _names(force_break_holder):
        return "take"
    state = lock_state(lease, moment)
    breakable = state["state"] == "stale" and current in _names(break_holder)
    if state["state"] in ("live", "stale") and not breakable:
        raise LockHeld(refusal(state))
    if fence is not None and resource_version(lease) != fence:
        raise LockMoved(
            "another meshfleet run (%s) held this cluster after this run read it: run this "
            "playbook again, so that it decides from what the cluster is now"
            % (current or last_holder(lease) or "unknown"))
    return "create" if lease is None else "take"


def lease_body(holder, ttl, resource_version_=None, moment=None):
    """The Lease naming `holder`, renewed now."""
    moment_stamp = stamp(moment or now())
    body = {"apiVersion": LEASE_API, "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "meshfleet"},
                         "annotations": {RENEW_ANNOTATION: str(renew_interval(ttl))}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": int(ttl),
                     "acquireTime": moment_stamp, "renewTime": moment_stamp}}
    if resource_version_:
        body["metadata"]["resourceVersion"] = resource_version_
    return body


def renewed_body(lease, moment=None):
    """The same Lease, renewed now (same holder, acquire time and duration)."""
    body = {"apiVersion": LEASE_API, "kind": "Lease",
            "metadata": dict(lease["metadata"]), "spec": dict(lease["spec"])}
    body["spec"]["renewTime"] = stamp(moment or now())
    return body


def released_body(lease):
    """The Lease with no holder, naming the run that released it."""
    metadata = dict(lease["metadata"])
    metadata["annotations"] = dict(metadata.get("annotations") or {})
    metadata["annotations"][RELEASED_ANNOTATION] = holder_of(lease)
    spec = {"leaseDurationSeconds": spec_of(lease).get("leaseDurationSeconds") or DEFAULT_TTL}
    return {"apiVersion": LEASE_API, "kind": "Lease", "metadata": metadata, "spec": spec}
