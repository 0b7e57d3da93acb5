"""meshfleet's REST client (kube_api.py, kube_connection.py) against a real apiserver: the
requests its modules make, the errors they act on, and every way of signing in it reads itself
(a client certificate, a token, a token file) or hands to kubernetes.core's client (an exec
plugin, other auth options), with the same answers both ways; and Helm releases read from the
Secrets helm stores them in (helm_record.py), checked against what the real helm shows."""

import json
import subprocess
import uuid

import pytest
import yaml
from kubernetes import client

from ansible_collections.meshfleet.istio.plugins.module_utils.access import denial, unreachable
from ansible_collections.meshfleet.istio.plugins.module_utils.helm_record import (
    local_chart_version,
    metadata,
    read_release,
    values,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_api import KubeApi
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_connection import (
    connection_of,
    from_kubernetes_client,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_exceptions import (
    ApiError,
    ApiUnreachable,
    ConflictError,
    NotFoundError,
    ResourceNotFoundError,
    TooManyRequestsError,
)
from localfleet.pytest_plugin import api_client
from localfleet.waits import wait_until

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def context(fleet):
    return fleet.clusters[0].spec.name


@pytest.fixture(scope="module")
def api(fleet, context):
    return KubeApi(connection_of({"kubeconfig": str(fleet.kubeconfig), "context": context}))


@pytest.fixture
def scratch(api):
    name = "kapi-" + uuid.uuid4().hex[:6]
    api.create("v1", "Namespace", {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name}})
    yield name
    api.delete("v1", "Namespace", name)


def config_map(name, namespace, data):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": data}


def names(listing):
    return sorted(item["metadata"]["name"] for item in listing["items"])


def test_both_ways_of_connecting_read_the_same_cluster(fleet, context, api):
    through_client = KubeApi(from_kubernetes_client(
        {"kubeconfig": str(fleet.kubeconfig), "context": context}))
    assert through_client.version() == api.version()
    assert names(through_client.list("v1", "Namespace")) == names(api.list("v1", "Namespace"))
    assert "kube-system" in names(api.list("v1", "Namespace"))


def test_an_object_is_applied_patched_replaced_and_deleted(api, scratch):
    applied = api.apply(config_map("settings", scratch, {"a": "1"}), "meshfleet", force=True)
    assert applied["data"] == {"a": "1"}
    assert [entry["manager"] for entry in applied["metadata"]["managedFields"]] == ["meshfleet"]

    dry = api.apply(config_map("settings", scratch, {"a": "2"}), "meshfleet", True, dry_run="All")
    assert dry["data"] == {"a": "2"}
    assert api.get("v1", "ConfigMap", "settings", scratch)["data"] == {"a": "1"}

    patched = api.merge_patch("v1", "ConfigMap", "settings", {"data": {"b": "2"}}, scratch,
                              field_manager="meshfleet")
    assert patched["data"] == {"a": "1", "b": "2"}

    stale = dict(applied, data={"c": "3"})  # the resourceVersion of the first apply
    with pytest.raises(ConflictError) as conflict:
        api.replace(stale, scratch)
    assert conflict.value.status == 409
    with pytest.raises(ConflictError):
        api.create("v1", "ConfigMap", config_map("settings", scratch, {}), scratch)

    api.delete("v1", "ConfigMap", "settings", scratch)
    with pytest.raises(NotFoundError) as gone:
        api.get("v1", "ConfigMap", "settings", scratch)
    assert "not found" in gone.value.message()


def test_a_label_selector_filters_a_list(api, scratch):
    for name, tier in (("one", "web"), ("two", "db")):
        body = config_map(name, scratch, {})
        body["metadata"]["labels"] = {"tier": tier}
        api.create("v1", "ConfigMap", body, scratch)
    assert names(api.list("v1", "ConfigMap", scratch, label_selector="tier=web")) == ["one"]
    assert names(api.list("v1", "ConfigMap", scratch, label_selector="tier in (web,db)")) == [
        "one", "two"]


def test_a_kind_the_apiserver_does_not_serve_is_named(api):
    with pytest.raises(ResourceNotFoundError, match="serves no Gizmo in gizmos.example/v1"):
        api.resource("gizmos.example/v1", "Gizmo")
    with pytest.raises(ResourceNotFoundError, match="serves no Widget in v1"):
        api.resource("v1", "Widget")


def test_an_eviction_a_budget_refuses_is_told_apart_from_a_gone_pod(fleet, context, api, scratch):
    labels = {"app": "held"}
    api.create("apps/v1", "Deployment", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "held"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "app", "image": "example.invalid/app:1"}]}}}}, scratch)
    api.create("policy/v1", "PodDisruptionBudget", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "held"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}}, scratch)

    def budget_counts_the_pod():
        budget = api.get("policy/v1", "PodDisruptionBudget", "held", scratch)
        return budget.get("status", {}).get("currentHealthy") == 1

    wait_until(budget_counts_the_pod, "the budget to count the Ready pod")
    pod = api.list("v1", "Pod", scratch, label_selector="app=held")["items"][0]["metadata"]
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": pod["name"], "namespace": scratch}}
    with pytest.raises(TooManyRequestsError) as refused:
        api.create("v1", "Pod", eviction, scratch, pod["name"], "eviction")
    assert refused.value.status == 429
    with pytest.raises(NotFoundError):
        api.create("v1", "Pod", dict(eviction, metadata={"name": "none", "namespace": scratch}),
                   scratch, "none", "eviction")


def test_a_denied_request_gives_the_identity_and_permission_to_grant(fleet, context):
    restricted = KubeApi(connection_of({"kubeconfig": str(fleet.kubeconfig),
                                        "context": context + "-restricted"}))
    with pytest.raises(ApiError) as denied:
        restricted.list("v1", "Secret", "kube-system")
    assert denied.value.status == 403
    message = denial(context, denied.value.message())
    assert message.startswith(context + ": the identity ")
    assert "may not list secrets in namespace kube-system" in message


def test_an_apiserver_that_does_not_answer_is_named_with_its_address(fleet, context, tmp_path):
    config = yaml.safe_load(fleet.kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = "https://127.0.0.1:9"
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    with pytest.raises(ApiUnreachable) as failed:
        KubeApi(connection_of({"kubeconfig": str(path), "context": context})).version()
    assert unreachable(context, str(failed.value)).startswith(
        context + ": cannot reach the API server at https://127.0.0.1:9 (connection refused)")


@pytest.fixture(scope="module")
def service_account_token(fleet, context):
    """A token of a ServiceAccount allowed nothing: the apiserver names it in its 403."""
    core = client.CoreV1Api(api_client(fleet, context))
    name = "kapi-" + uuid.uuid4().hex[:6]
    core.create_namespaced_service_account("default", {"metadata": {"name": name}})
    request = core.create_namespaced_service_account_token(
        name, "default", {"spec": {"expirationSeconds": 3600}})
    yield name, request.status.token
    core.delete_namespaced_service_account(name, "default")


def kubeconfig_with_user(fleet, context, user, tmp_path):
    """The fleet's kubeconfig with the context's user replaced by `user`."""
    config = yaml.safe_load(fleet.kubeconfig.read_text())
    user_name = next(entry["context"]["user"] for entry in config["contexts"]
                     if entry["name"] == context)
    for entry in config["users"]:
        if entry["name"] == user_name:
            entry["user"] = user
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def identity_in_denial(kubeconfig, context):
    api = KubeApi(connection_of({"kubeconfig": kubeconfig, "context": context}))
    with pytest.raises(ApiError) as denied:
        api.list("v1", "Secret", "kube-system")
    return denied.value.status, denied.value.message()


@pytest.mark.parametrize("form", ["token", "tokenFile", "exec"])
def test_a_token_reaches_the_apiserver_however_the_kubeconfig_gives_it(
        fleet, context, service_account_token, tmp_path, form):
    account, token = service_account_token
    if form == "token":
        user = {"token": token}
    elif form == "tokenFile":
        (tmp_path / "token").write_text(token + "\n")
        user = {"tokenFile": "token"}  # relative to the kubeconfig's directory
    else:  # an exec plugin: handed to kubernetes.core's client
        credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                      "status": {"token": token}}
        user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "echo",
                         "args": [json.dumps(credential)], "interactiveMode": "Never"}}
    status, message = identity_in_denial(kubeconfig_with_user(fleet, context, user, tmp_path),
                                         context)
    assert status == 403
    assert 'User "system:serviceaccount:default:%s" cannot list' % account in message


def helm(fleet, context, *args):
    from localfleet import gobuild

    command = [str(gobuild.binaries_dir() / "helm"), *args, "--kubeconfig", str(fleet.kubeconfig),
               "--kube-context", context]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def small_chart(tmp_path, version):
    chart = tmp_path / "small"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: small\nversion: {version}\nappVersion: '9.9'\n")
    (chart / "values.yaml").write_text("size: 1\n")
    (chart / "templates" / "config.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small\n"
        "data:\n  size: {{ .Values.size | quote }}\n")
    return chart


def test_a_release_read_from_its_secrets_is_what_helm_get_shows(fleet, context, api, scratch,
                                                                 tmp_path):
    chart = small_chart(tmp_path, "0.3.1")
    packaged = helm(fleet, context, "package", str(chart), "-d", str(tmp_path)).split()[-1]
    assert local_chart_version(str(chart)) == local_chart_version(packaged) == "0.3.1"
    assert "version: 0.3.1" in helm(fleet, context, "show", "chart", packaged)

    helm(fleet, context, "install", "small", packaged, "-n", scratch)
    helm(fleet, context, "upgrade", "small", packaged, "-n", scratch, "--reuse-values",
         "--set", "size=5")
    record = read_release(api, "small", scratch)
    shown = json.loads(helm(fleet, context, "get", "metadata", "small", "-n", scratch, "-o",
                            "json"))
    assert metadata(record) == {key: shown.get(key) for key in metadata(record)}
    assert metadata(record)["revision"] == 2
    assert values(record) == json.loads(helm(fleet, context, "get", "values", "small", "-n",
                                             scratch, "-o", "json")) == {"size": 5}
    assert record["manifest"].strip() == helm(fleet, context, "get", "manifest", "small", "-n",
                                              scratch).strip()
    assert read_release(api, "absent", scratch) is None
