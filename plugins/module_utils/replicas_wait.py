# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Waiting until Deployments run a minimum of Ready replicas (a gateway's HPA scales it up from
one after helm's --wait returned), in one process, with one GET per Deployment per poll."""

from __future__ import annotations

import time

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import status_of


class ReplicasTimeout(MeshfleetError):
    """Some Deployments did not reach their minimum in time; `result` holds where each stands."""


def ready_replicas(deployment):
    return status_of(deployment).get("readyReplicas") or 0


def short_of_minimum(readiness):
    """The entries of `readiness` that have fewer Ready replicas than their minimum."""
    return [entry for entry in readiness if entry["ready"] < entry["minimum"]]


def read_readiness(cluster, wanted):
    return [dict(entry, ready=ready_replicas(cluster.get("apps/v1", "Deployment",
                                                         entry["name"], entry["namespace"])))
            for entry in wanted]


def wait_for_replicas(cluster, wanted, timeout, interval, check_mode=False, clock=time):
    """Poll until every Deployment of `wanted` ({name, namespace, minimum}) has its minimum of
    Ready replicas; check mode reads once and does not wait."""
    deadline = clock.monotonic() + timeout
    while True:
        readiness = read_readiness(cluster, wanted)
        missing = short_of_minimum(readiness)
        if not missing or check_mode:
            return readiness
        if clock.monotonic() >= deadline:
            raise ReplicasTimeout(
                "timed out after %ss waiting for %s" % (timeout, ", ".join(
                    "%s/%s (%d of %d Ready)" % (e["namespace"], e["name"], e["ready"], e["minimum"])
                    for e in missing)), deployments=readiness)
        clock.sleep(interval)


def gateways_to_await(releases, gateways, default_minimum):
    """The gateway Deployments a run waits for, from the gateways role's helm_release results
    (each with its gateway as `item`) and the mesh read's `gateways`: each release this run
    changed, and each whose Deployment the read found short of its minimum or missing."""
    ready = dict(((g["namespace"], g["name"]), g["ready_replicas"]) for g in gateways)
    wanted = []
    for result in releases:
        release = result.get("release") or {}
        minimum = int((result.get("item") or {}).get("replicas") or default_minimum)
        key = (release.get("namespace"), release.get("name"))
        if key[1] and (result.get("changed") or ready.get(key, 0) < minimum):
            wanted.append({"name": key[1], "namespace": key[0], "minimum": minimum})
    return wanted
