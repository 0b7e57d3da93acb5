"""Access denials become one plain sentence: cluster, identity, permission, where to grant it.
The texts below are the apiserver's own (kube-apiserver 1.35, RBAC), as kubectl, the Python
client and helm pass them on."""

import json

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import access, helm

SA = "system:serviceaccount:meshfleet-system:meshfleet"
LEASE = ('leases.coordination.k8s.io "meshfleet-run-lock" is forbidden: User "%s" cannot get '
         'resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system"' % SA)
HINT = ("grant it (see rbac/meshfleet-clusterrole.yml and rbac/meshfleet-role.yml of "
        "meshfleet.istio, docs/rbac.md)")


def test_a_denied_namespaced_request_names_cluster_identity_verb_resource_group_namespace():
    assert access.denial("cluster2", LEASE) == (
        "cluster2: the identity %s may not get leases.coordination.k8s.io in namespace "
        "kube-system; %s" % (SA, HINT))


def test_a_core_resource_has_no_group_suffix_and_a_subresource_is_kept():
    text = ('pods "web-1" is forbidden: User "%s" cannot create resource "pods/eviction" in API '
            'group "" in the namespace "shop"' % SA)
    assert access.denial("prod-eu1", text).startswith(
        "prod-eu1: the identity %s may not create pods/eviction in namespace shop; " % SA)


def test_a_cluster_scoped_denial_says_cluster_wide():
    text = ('namespaces is forbidden: User "%s" cannot list resource "namespaces" in API group "" '
            'at the cluster scope' % SA)
    assert access.denial("cluster1", text) == (
        "cluster1: the identity %s may not list namespaces cluster-wide; %s" % (SA, HINT))


def test_what_was_being_done_goes_before_the_hint():
    message = access.denial("cluster3", LEASE, "helm get metadata istiod-1-31-0 -n istio-system")
    assert "kube-system (helm get metadata istiod-1-31-0 -n istio-system); grant it" in message


def test_a_role_that_would_grant_more_than_the_identity_holds_lists_the_missing_rules():
    text = ('Error: INSTALLATION FAILED: clusterroles.rbac.authorization.k8s.io '
            '"istiod-clusterrole-1-31-0-istio-system" is forbidden: user "%s" (groups=['
            '"system:serviceaccounts" "system:serviceaccounts:meshfleet-system" '
            '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
            '{APIGroups:[""], Resources:["pods/eviction"], Verbs:["get"]}\n'
            '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}' % SA)
    message = access.denial("cluster1", text)
    assert message.startswith(
        "cluster1: the identity %s may not create or bind clusterroles.rbac.authorization.k8s.io "
        "istiod-clusterrole-1-31-0-istio-system: it would grant permissions the identity does not "
        'hold: {APIGroups:[""], Resources:["pods/eviction"], Verbs:["get"]}; '
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}; hold them too' % SA)
    assert "meshfleet-istio-charts" in message


@pytest.mark.parametrize("text", ["", "connection refused", 'secrets "x" not found'])
def test_other_errors_are_not_denials(text):
    assert access.denial("cluster1", text) is None


class FakeApiError(Exception):
    status = 403

    def __init__(self, body):
        super().__init__("(403)\nReason: Forbidden\nHTTP response headers: ...")
        self.body = body


def test_the_status_message_is_read_from_the_client_error_body():
    body = json.dumps({"kind": "Status", "message": LEASE, "reason": "Forbidden", "code": 403})
    assert access.exception_text(FakeApiError(body.encode())) == LEASE
    assert access.denial("c", access.exception_text(FakeApiError(body))).startswith("c: the identity")
    assert access.exception_text(FakeApiError(None)).startswith("(403)")


class FakeModule(object):
    def __init__(self, rc, err):
        self.result = (rc, "", err)

    def run_command(self, argv):
        return self.result


def test_helm_denials_raise_access_denied_naming_the_helm_command():
    err = ('Error: query: failed to query with labels: secrets is forbidden: User "%s" cannot '
           'list resource "secrets" in API group "" in the namespace "istio-system"\n' % SA)
    runner = helm.Helm(FakeModule(1, err), "helm", "/k", "cluster2")
    with pytest.raises(helm.AccessDenied) as raised:
        runner.run(["upgrade", "--install", "istiod-1-31-0", "chart.tgz", "-n", "istio-system"])
    assert str(raised.value) == (
        "cluster2: the identity %s may not list secrets in namespace istio-system "
        "(helm upgrade istiod-1-31-0 -n istio-system); %s" % (SA, HINT))


def test_other_helm_failures_stay_helm_errors(monkeypatch):
    runner = helm.Helm(FakeModule(1, "Error: timed out waiting for the condition"), "helm")
    with pytest.raises(helm.HelmError) as raised:
        runner.run(["upgrade", "--install", "istiod-1-31-0", "chart.tgz"])
    assert not isinstance(raised.value, helm.AccessDenied)
    monkeypatch.setenv("HELM_DRIVER", "configmap")  # releases not in Secrets: helm reads them
    assert helm.Helm(FakeModule(1, "Error: release: not found"), "helm").metadata("x", "y") is None


URLLIB3_REFUSED = (
    "HTTPSConnectionPool(host='127.0.0.1', port=20101): Max retries exceeded with url: /version "
    "(Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f3c>: "
    "Failed to establish a new connection: [Errno 111] Connection refused'))")
HELM_REFUSED = ('Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:20101/version": '
                'dial tcp 127.0.0.1:20101: connect: connection refused')


def test_an_api_server_that_refuses_connections_is_named_with_its_address():
    assert access.unreachable("cluster2", URLLIB3_REFUSED) == (
        "cluster2: cannot reach the API server at https://127.0.0.1:20101 (connection refused): "
        "check meshfleet_kubeconfig / meshfleet_context of this cluster and that its API server "
        "is up")
    assert access.unreachable("cluster2", HELM_REFUSED).startswith(
        "cluster2: cannot reach the API server at https://127.0.0.1:20101 (connection refused)")


def test_a_timeout_and_an_unknown_host_are_told_apart():
    timeout = URLLIB3_REFUSED.replace("[Errno 111] Connection refused", "timed out")
    assert "(timed out)" in access.unreachable("c", timeout)
    dns = ('Error: Kubernetes cluster unreachable: Get "https://api.example:6443/version": '
           'dial tcp: lookup api.example: no such host')
    assert access.unreachable("c", dns).startswith(
        "c: cannot reach the API server at https://api.example:6443 (the host name does not resolve)")


def test_other_errors_are_not_called_unreachable():
    assert access.unreachable("c", 'configmaps "x" not found') is None
