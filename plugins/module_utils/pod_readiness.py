# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""When a pod counts as Ready: as a Service's endpoints count it."""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    meta_of,
    status_of,
)


def is_terminating(pod):
    """Deleted and on its way out (metadata.deletionTimestamp is set)."""
    return bool(meta_of(pod).get("deletionTimestamp"))


def is_ready(pod):
    """The Ready condition is True and the pod is not terminating: a terminating pod leaves a
    Service's ready endpoints even while its containers still pass their probes."""
    if is_terminating(pod):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status_of(pod).get("conditions") or [])
