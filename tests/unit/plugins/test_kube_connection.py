"""Which connections meshfleet sets up itself and which it hands to kubernetes.core's client,
and how a kubeconfig it reads itself is understood (files only; the requests themselves are
tested against a real apiserver in tests/playbooks/test_kube_api.py)."""

import json

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import kube_connection
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_connection import (
    KubeconfigError,
    auth_options,
    from_kubeconfig,
    plain_kubeconfig,
)


@pytest.fixture(autouse=True)
def no_auth_environment(monkeypatch):
    for name in ("KUBECONFIG", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT", "K8S_AUTH_HOST",
                 "K8S_AUTH_API_KEY", "K8S_AUTH_VERIFY_SSL", "K8S_AUTH_VALIDATE_CERTS"):
        monkeypatch.delenv(name, raising=False)


def test_a_kubeconfig_file_and_a_context_are_read_here(tmp_path):
    path = str(tmp_path / "config")
    assert plain_kubeconfig(auth_options({"kubeconfig": path, "context": "c1"})) == (path, "c1")
    assert plain_kubeconfig(auth_options({"context": "c1"}))[1] == "c1"


@pytest.mark.parametrize("extra", [{"host": "https://api:6443"}, {"api_key": "t"},
                                   {"validate_certs": False}, {"impersonate_user": "u"},
                                   {"proxy": "http://proxy:3128"}, {"persist_config": True}])
def test_any_other_auth_option_goes_to_the_kubernetes_client(extra):
    options = auth_options(dict({"kubeconfig": "/k", "context": "c"}, **extra))
    assert plain_kubeconfig(options) is None


def test_k8s_auth_variables_count_as_options(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "from-env")
    assert plain_kubeconfig(auth_options({"kubeconfig": "/k"})) == ("/k", "from-env")
    monkeypatch.setenv("K8S_AUTH_HOST", "https://api:6443")
    assert plain_kubeconfig(auth_options({"kubeconfig": "/k"})) is None


def test_no_option_at_all_is_in_cluster_or_default_config_for_the_client():
    assert plain_kubeconfig(auth_options({})) is None


def test_an_in_memory_kubeconfig_or_a_kubeconfig_list_goes_to_the_client(monkeypatch):
    assert plain_kubeconfig(auth_options({"kubeconfig": {"clusters": []}})) is None
    monkeypatch.setenv("KUBECONFIG", "/a:/b")
    assert plain_kubeconfig(auth_options({"context": "c"})) is None


def kubeconfig(tmp_path, cluster, user, current="c1"):
    config = {"apiVersion": "v1", "kind": "Config", "current-context": current,
              "contexts": [{"name": "c1", "context": {"cluster": "k1", "user": "u1"}}],
              "clusters": [{"name": "k1", "cluster": cluster}],
              "users": [{"name": "u1", "user": user}]}
    path = tmp_path / "config"
    path.write_text(json.dumps(config))
    return str(path)


def test_a_token_file_is_read_relative_to_the_kubeconfig(tmp_path):
    (tmp_path / "token").write_text("abc\n")
    path = kubeconfig(tmp_path, {"server": "https://127.0.0.1:6443/",
                                 "insecure-skip-tls-verify": True}, {"tokenFile": "token"})
    connection = from_kubeconfig(path, None)
    assert connection.server == "https://127.0.0.1:6443"
    assert connection.authorization() == "Bearer abc"


def test_a_user_with_an_exec_plugin_is_handed_to_the_client(tmp_path, monkeypatch):
    handed = []
    monkeypatch.setattr(kube_connection, "from_kubernetes_client", handed.append)
    path = kubeconfig(tmp_path, {"server": "https://api:6443"},
                      {"exec": {"command": "aws", "apiVersion": "v1"}})
    from_kubeconfig(path, "c1")
    assert handed == [{"kubeconfig": path, "context": "c1"}]


@pytest.mark.parametrize("field", ["proxy-url", "tls-server-name"])
def test_a_cluster_with_a_proxy_or_a_server_name_goes_to_the_client(tmp_path, monkeypatch, field):
    handed = []
    monkeypatch.setattr(kube_connection, "from_kubernetes_client", handed.append)
    from_kubeconfig(kubeconfig(tmp_path, {"server": "https://api:6443", field: "x"}, {}), "c1")
    assert len(handed) == 1


def test_a_missing_context_names_the_file_and_the_context(tmp_path):
    path = kubeconfig(tmp_path, {"server": "https://api:6443"}, {})
    with pytest.raises(KubeconfigError, match="%s: no context named 'other'" % path):
        from_kubeconfig(path, "other")


def test_a_missing_kubeconfig_names_the_path(tmp_path):
    with pytest.raises(KubeconfigError, match="cannot read the kubeconfig %s" % tmp_path):
        from_kubeconfig(str(tmp_path / "absent"), "c1")
