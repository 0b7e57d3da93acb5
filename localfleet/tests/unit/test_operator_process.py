"""How the fleet runs an IstioOperator Deployment's operator as a process (no cluster: the
Deployment and its pods are given, the binary is a small script)."""

import json
import time

from localfleet import operator_process

CONTAINER = {
    "name": "istio-operator", "image": "docker.io/istio/operator:1.22.8",
    "command": ["operator", "server", "--monitoring-host=127.0.0.1", "--monitoring-port=15014"],
    "env": [{"name": "WATCH_NAMESPACE", "value": "istio-system,istio-gateways"},
            {"name": "REVISION", "value": "1-22-8"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}


def deployment(container=CONTAINER, revision="1-22-8"):
    return {"metadata": {"name": f"istio-operator-{revision}", "namespace": "istio-operator"},
            "spec": {"selector": {"matchLabels": {"name": "istio-operator"}},
                     "template": {"spec": {"containers": [container],
                                           "serviceAccountName": f"istio-operator-{revision}"}}}}


POD = {"metadata": {"name": "istio-operator-1-22-8-abc", "namespace": "istio-operator",
                    "labels": {"name": "istio-operator"}},
       "spec": {"serviceAccountName": "istio-operator-1-22-8"}, "status": {"phase": "Running"}}


def test_the_command_line_keeps_the_containers_flags_but_its_own_monitoring_address(tmp_path):
    container = dict(CONTAINER, args=["--log_output_level", "default:debug",
                                      "--monitoring-port", "9999"])
    cmd = operator_process.command_line(tmp_path / "operator", container, "127.50.1.1")
    assert cmd == [str(tmp_path / "operator"), "server", "--log_output_level", "default:debug",
                   "--monitoring-host=127.50.1.1", "--monitoring-port=15014",
                   "--ctrlz_address=127.50.1.1", "--ctrlz_port=9876"]


def test_only_a_built_release_of_the_operator_engine_gets_a_process(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert operator_process.operator_binary("1.31.0") is None
    assert operator_process.operator_binary("1.22.8") is None
    binary = tmp_path / "meshfleet" / "current" / "istio" / "1.22.8" / "operator"
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    assert operator_process.operator_binary("1.22.8") == binary


def fake_operator(tmp_path, monkeypatch, script="sleep 60"):
    binary = tmp_path / "operator"
    binary.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/argv\n"
                      f"echo \"$REVISION $POD_NAME $KUBECONFIG\" >> {tmp_path}/env\n{script}\n")
    binary.chmod(0o755)
    monkeypatch.setattr(operator_process, "operator_binary", lambda release: binary)
    admin = tmp_path / "admin"
    admin.write_text(json.dumps({"users": [{"name": "a", "user": {"client-key-data": "k"}}]}))
    return operator_process.RealOperators("cluster1", 0, admin, tmp_path / "work")


def wait_for(path, lines):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return path.read_text().splitlines()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not get {lines} lines")


def test_a_deployment_with_a_live_pod_runs_one_operator_as_its_service_account(
        tmp_path, monkeypatch):
    operators = fake_operator(tmp_path, monkeypatch)
    try:
        operators.reconcile([deployment()], [POD])
        operators.reconcile([deployment()], [POD])
        process = operators.slots["istio-operator-1-22-8"].process
        assert process.alive() and process.address == "127.50.1.1"
        assert wait_for(tmp_path / "argv", 1) == [
            "server --monitoring-host=127.50.1.1 --monitoring-port=15014 "
            "--ctrlz_address=127.50.1.1 --ctrlz_port=9876"]
        revision, pod, kubeconfig = wait_for(tmp_path / "env", 1)[0].split()
        assert (revision, pod) == ("1-22-8", "istio-operator-1-22-8-abc")
        user = json.loads(open(kubeconfig).read())["users"][0]["user"]
        assert user["as"] == "system:serviceaccount:istio-operator:istio-operator-1-22-8"
        operators.reconcile([deployment()], [])
        assert operators.slots == {} and not process.alive()
    finally:
        operators.stop()


def test_a_changed_spec_replaces_the_operator_and_one_that_exits_comes_back_later(
        tmp_path, monkeypatch):
    operators = fake_operator(tmp_path, monkeypatch, script="exit 3")
    try:
        operators.reconcile([deployment()], [POD])
        slot = operators.slots["istio-operator-1-22-8"]
        slot.process.proc.wait(10)
        operators.reconcile([deployment()], [POD])
        assert slot.process is None and slot.restarts == 1 and slot.next_start > time.monotonic()
        slot.next_start = 0
        operators.reconcile([deployment()], [POD])
        first = slot.process
        assert first is not None
        wait_for(tmp_path / "argv", 2)
        changed = dict(CONTAINER, image="docker.io/istio/operator:1.22.8-distroless")
        operators.reconcile([deployment(changed)], [POD])
        assert slot.process is not first and slot.restarts == 0
        assert len(wait_for(tmp_path / "argv", 3)) == 3
    finally:
        operators.stop()


def test_each_revision_takes_its_own_pods_although_the_charts_selectors_overlap():
    other = dict(POD, metadata=dict(POD["metadata"], name="istio-operator-1-23-6-xyz"),
                 spec={"serviceAccountName": "istio-operator-1-23-6"})
    assert operator_process.own_pods(deployment(), [other, POD]) == [POD]
    assert operator_process.own_pods(deployment(revision="1-23-6"), [other, POD]) == [other]
