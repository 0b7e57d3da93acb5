"""How a real istiod process is made from an istiod Deployment (pure logic, no cluster)."""

import json

from localfleet import istiod_process, istiod_supervisor

CONTAINER = {
    "name": "discovery", "image": "registry.istio.io/release/pilot:1.30.3",
    "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info",
             "--domain", "cluster.local", "--httpsAddr", ":15017",
             "--keepaliveMaxServerConnectionAge", "30m"],
    "env": [{"name": "REVISION", "value": "1-30-3"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "SERVICE_ACCOUNT",
             "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "KUBECONFIG", "value": "/var/run/secrets/remote/config"}]}
POD = {"metadata": {"name": "istiod-1-30-3-abc", "namespace": "istio-system"},
       "spec": {"serviceAccountName": "istiod-1-30-3"}}


def test_the_release_is_read_from_the_pilot_image_tag():
    assert istiod_process.release_of_image("registry.istio.io/release/pilot:1.30.3") == "1.30.3"
    assert istiod_process.release_of_image("hub:5000/pilot:1.31.0-distroless") == "1.31.0"
    assert istiod_process.release_of_image("hub:5000/pilot") == ""


def test_the_command_line_keeps_the_containers_flags_but_its_own_addresses(tmp_path):
    cmd = istiod_process.command_line(tmp_path / "pilot-discovery", CONTAINER, "127.10.1.1",
                                      tmp_path / "kubeconfig")
    assert cmd[1:7] == ["discovery", "--log_output_level=default:info", "--domain",
                        "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"]
    assert "--httpsAddr=127.10.1.1:15017" in cmd and "--monitoringAddr=127.10.1.1:15014" in cmd
    assert ":15017" not in cmd and not any(a == "--monitoringAddr=:15014" for a in cmd)
    assert f"--kubeconfig={tmp_path / 'kubeconfig'}" in cmd


def test_the_environment_resolves_field_references_from_the_pod(tmp_path):
    env = istiod_process.environment(CONTAINER, POD, tmp_path / "kubeconfig")
    assert env["REVISION"] == "1-30-3" and env["POD_NAME"] == "istiod-1-30-3-abc"
    assert env["SERVICE_ACCOUNT"] == "istiod-1-30-3"
    assert env["GOMAXPROCS"] == "1"
    assert env["KUBECONFIG"] == str(tmp_path / "kubeconfig")


def test_the_kubeconfig_acts_as_the_pods_service_account(tmp_path):
    admin = tmp_path / "admin"
    admin.write_text(json.dumps({"users": [{"name": "a", "user": {"client-key-data": "k"}}]}))
    config = istiod_process.impersonating_kubeconfig(admin, "istiod-1-30-3")
    user = config["users"][0]["user"]
    assert user["as"] == "system:serviceaccount:istio-system:istiod-1-30-3"
    assert "system:serviceaccounts:istio-system" in user["as-groups"]
    assert user["client-key-data"] == "k"


def test_a_changed_container_spec_changes_its_hash_and_pods_are_read_by_selector():
    changed = dict(CONTAINER, image="registry.istio.io/release/pilot:1.31.0")
    assert istiod_supervisor.spec_hash(CONTAINER) != istiod_supervisor.spec_hash(changed)
    deployment = {"spec": {"selector": {"matchLabels": {"app": "istiod", "istio.io/rev": "a"}}}}
    pods = [{"metadata": {"name": "p1", "labels": {"app": "istiod", "istio.io/rev": "a"}},
             "status": {"phase": "Running"}},
            {"metadata": {"name": "p2", "labels": {"app": "istiod", "istio.io/rev": "b"}}},
            {"metadata": {"name": "p3", "labels": {"app": "istiod", "istio.io/rev": "a"},
                          "deletionTimestamp": "now"}}]
    assert [p["metadata"]["name"] for p in istiod_supervisor.live_pods(deployment, pods)] == ["p1"]
