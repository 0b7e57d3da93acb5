# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Stable gateway Services and their cut-over from one revision's gateways to another's.

A stable Service (the gateways role creates one per gateway) selects a gateway kind and a
revision, e.g. {istio: ingressgateway, istio.io/rev: 1-30-dev}. Cutting it over changes only the
selector's istio.io/rev, and only while the target revision's gateway pods (the pods the new
selector selects) are Ready in sufficient number. Running it again with the old revision is the
rollback.

`cut_over` talks to the API; everything else is pure and unit-tested on plain dicts.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.converge import object_ref
from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import REV_LABEL
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import spec_of
from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import (
    service_selector_string,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.pod_readiness import is_ready


class CutoverError(MeshfleetError, ValueError):
    """A cut-over meshfleet refuses, with the way out in its message; `not_ready` when the only
    reason is too few Ready gateway pods of the target revision."""

    not_ready = False


class NotReady(CutoverError):
    not_ready = True


def selector_of(service):
    return dict(spec_of(service).get("selector") or {})


def retargeted(selector, revision):
    """The selector with its istio.io/rev pointed at `revision`; every other key kept."""
    wanted = dict(selector)
    wanted[REV_LABEL] = revision
    return wanted


def count_ready(pods):
    return sum(1 for pod in pods if is_ready(pod))


def needed_ready(min_ready, serving_ready):
    """How many Ready pods the target revision needs: `min_ready`, or as many as serve now."""
    if min_ready is not None:
        return min_ready
    return max(1, serving_ready)


def check_min_ready(min_ready):
    if min_ready is not None and min_ready < 1:
        raise CutoverError("min_ready must be at least 1 (got %d): a Service that selects no Ready "
                           "pod drops every connection" % min_ready)


def check_service(service, ref):
    """Refuse a missing Service, or one whose selector would select a whole revision."""
    if service is None:
        raise CutoverError("Service %s does not exist; create it with the meshfleet.istio.gateways "
                           "role (or check name and namespace)" % ref)
    selector = selector_of(service)
    if not [key for key in selector if key != REV_LABEL]:
        raise CutoverError(
            "Service %s has the selector %s: a cut-over needs a gateway label such as "
            "istio=ingressgateway beside %s, or it would select every pod of the revision"
            % (ref, selector or "{}", REV_LABEL))


def check_ready(ref, revision, selector, ready, needed):
    if ready < needed:
        raise NotReady(
            "Service %s not cut over to revision %s: %d Ready gateway pod(s) match %s, %d needed; "
            "wait until the revision's gateway Deployment is Ready (or scale it up), "
            "or set min_ready" % (ref, revision, ready, service_selector_string(selector), needed))


def cut_over(cluster, changes, name, namespace, revision, min_ready=None):
    """Point Service `namespace/name` at `revision` when its gateway pods are Ready enough.

    Returns previous_revision, revision and ready_pods (Ready pods of the target revision).
    Writes one merge patch of spec.selector's istio.io/rev, so the Service's other fields and
    their owners are left alone; nothing when the Service already points there.
    """
    check_min_ready(min_ready)
    ref = "%s/%s" % (namespace, name)
    service = cluster.get("v1", "Service", name, namespace)
    check_service(service, ref)
    selector = selector_of(service)
    wanted = retargeted(selector, revision)
    ready = count_ready(cluster.list("v1", "Pod", namespace, service_selector_string(wanted)))
    result = dict(previous_revision=selector.get(REV_LABEL), revision=revision, ready_pods=ready)
    if wanted == selector:
        return result
    serving = 0 if min_ready is not None else count_ready(
        cluster.list("v1", "Pod", namespace, service_selector_string(selector)))
    check_ready(ref, revision, wanted, ready, needed_ready(min_ready, serving))
    after = cluster.merge_patch("v1", "Service", name, {"spec": {"selector": {REV_LABEL: revision}}},
                                namespace)
    changes.record(True, service, after, object_ref(service))
    return result


def predict_cut_over(cluster, changes, name, namespace, revision):
    """Check mode, for a revision whose gateway pods an earlier step of the run would create:
    the cut-over's patch as a server-side dry run, without the readiness check."""
    service = cluster.get("v1", "Service", name, namespace)
    selector = selector_of(service)
    result = dict(previous_revision=selector.get(REV_LABEL), revision=revision, ready_pods=0,
                  assumed_ready=True)
    if retargeted(selector, revision) != selector:
        after = cluster.merge_patch("v1", "Service", name,
                                    {"spec": {"selector": {REV_LABEL: revision}}}, namespace)
        changes.record(True, service, after, object_ref(service))
    return result
