# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The reads and writes of a workload migration, on top of `kube.Cluster`."""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import meta_of, spec_of
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_exceptions import (
    ConflictError,
    NotFoundError,
    TooManyRequestsError,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import selector_string
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_plan import (
    LISTED_KINDS,
    controller_ref,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_replacement import (
    EVICTED,
    GONE,
    REFUSED,
    restart_patch,
)


class WorkloadApi(object):
    """The reads and writes of a migration, on top of `kube.Cluster`."""

    def __init__(self, cluster):
        self.cluster = cluster
        self._replicaset_owner = {}

    def namespace(self, name):
        return self.cluster.get("v1", "Namespace", name)

    def relabel(self, name, patch):
        return self.cluster.merge_patch("v1", "Namespace", name, patch)

    def namespace_objects(self, namespace):
        objects = {}
        for api_version, kind in LISTED_KINDS:
            objects[kind] = [dict(obj, kind=kind)
                             for obj in self.cluster.list(api_version, kind, namespace=namespace)]
        return objects

    def workload(self, kind, name, namespace):
        obj = self.cluster.get("apps/v1", kind, name, namespace)
        return dict(obj, kind=kind) if obj else None

    def restart(self, workload, when):
        meta = meta_of(workload)
        return self.cluster.merge_patch("apps/v1", workload["kind"], meta["name"],
                                        restart_patch(when), meta["namespace"])

    def pods_of(self, workload):
        """The workload's pods: matched by its selector and owned by it (through a ReplicaSet
        for a Deployment)."""
        meta = meta_of(workload)
        selector = selector_string(spec_of(workload).get("selector") or {})
        pods = self.cluster.list("v1", "Pod", namespace=meta["namespace"], label_selector=selector)
        return [pod for pod in pods if self._owner_uid(pod, workload) == meta["uid"]]

    def _owner_uid(self, pod, workload):
        owner = controller_ref(pod)
        if owner is None:
            return None
        if workload["kind"] != "Deployment" or owner["kind"] != "ReplicaSet":
            return owner.get("uid")
        key = (meta_of(pod)["namespace"], owner["name"])
        if key not in self._replicaset_owner:
            replicaset = self.cluster.get("apps/v1", "ReplicaSet", owner["name"], key[0])
            grand = controller_ref(replicaset)
            self._replicaset_owner[key] = grand.get("uid") if grand else None
        return self._replicaset_owner[key]

    def evict(self, pod):
        """EVICTED, REFUSED (429: a PodDisruptionBudget allows no disruption now) or GONE."""
        meta = meta_of(pod)
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "deleteOptions": {"preconditions": {"uid": meta["uid"]}}}
        try:
            self.cluster.evict(body)
        except TooManyRequestsError:
            return REFUSED
        except (NotFoundError, ConflictError):  # gone, or replaced (uid precondition)
            return GONE
        return EVICTED
