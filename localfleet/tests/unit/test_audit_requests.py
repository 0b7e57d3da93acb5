"""What counts as a request of an identity, read from audit events: subresources, clients,
denials, creates implied by applies, watches, markers; and the table of a request set."""

import json

from localfleet import audit_requests
from localfleet.audit_requests import Request

SA = "system:serviceaccount:meshfleet-system:meshfleet"


def event(verb, resource, group="", namespace="", name="", sub="", code=200, user=SA,
          agent="OpenAPI-Generator/33.1.0/python", audit_id=None, stage="ResponseComplete"):
    ref = {"resource": resource, "apiVersion": "v1"}
    for key, value in (("apiGroup", group), ("namespace", namespace), ("name", name),
                       ("subresource", sub)):
        if value:
            ref[key] = value
    return {"auditID": audit_id or f"{verb}-{resource}-{namespace}-{name}-{code}", "stage": stage,
            "verb": verb, "user": {"username": user}, "userAgent": agent, "objectRef": ref,
            "requestURI": "/x", "responseStatus": {"code": code}}


def write_log(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_requests_of_the_user_with_subresources_and_clients(tmp_path):
    log = write_log(tmp_path / "audit.log", [
        event("create", "pods", namespace="shop", name="web-1", sub="eviction"),
        event("list", "secrets", namespace="istio-system", agent="Helm/3.21.4"),
        event("list", "secrets", namespace="istio-system", user="meshfleet-admin"),
        {"auditID": "n", "stage": "ResponseComplete", "verb": "get", "user": {"username": SA},
         "requestURI": "/version"},
    ])
    assert audit_requests.requests(log, user=SA) == {
        Request("", "pods/eviction", "create", "shop", "web-1", "modules"),
        Request("", "secrets", "list", "istio-system", "", "helm")}


def test_denied_requests_are_left_out_and_listed_apart(tmp_path):
    log = write_log(tmp_path / "audit.log", [
        event("get", "leases", "coordination.k8s.io", "kube-system", "meshfleet-run-lock", code=403),
        event("get", "namespaces", name="shop")])
    assert audit_requests.requests(log, user=SA) == {Request("", "namespaces", "get", "", "shop", "modules")}
    assert [r.resource for r, _ in audit_requests.denied(log, user=SA)] == ["leases"]


def test_an_apply_that_created_its_object_also_needed_create(tmp_path):
    log = write_log(tmp_path / "audit.log", [
        event("patch", "configmaps", namespace="kube-system", name="meshfleet-upgrade", code=201),
        event("patch", "services", namespace="istio-gateways", name="gw", code=200)])
    verbs = {(r.resource, r.verb) for r in audit_requests.requests(log, user=SA)}
    assert verbs == {("configmaps", "patch"), ("configmaps", "create"), ("services", "patch")}


def test_a_watch_counts_once_whether_or_not_it_has_ended(tmp_path):
    log = write_log(tmp_path / "audit.log", [
        event("watch", "pods", namespace="shop", audit_id="w1", stage="ResponseStarted"),
        event("watch", "pods", namespace="shop", audit_id="w2", stage="ResponseStarted"),
        event("watch", "pods", namespace="shop", audit_id="w2")])
    assert len(audit_requests.requests(log, user=SA)) == 1


def test_markers_skip_what_came_before(tmp_path):
    log = write_log(tmp_path / "audit.log", [event("delete", "namespaces", name="old")])
    since = log.stat().st_size
    with open(log, "a") as out:
        out.write(json.dumps(event("get", "namespaces", name="new")) + "\n")
    assert {r.name for r in audit_requests.requests(log, since, SA)} == {"new"}


def test_the_table_lists_the_request_set():
    text = audit_requests.table({Request("", "pods/eviction", "create", "shop", "a"),
                       Request("", "pods/eviction", "create", "shop", "b")})
    assert text.splitlines()[1].split() == ["-", "pods", "eviction", "create", "shop"]
    assert len(text.splitlines()) == 2
