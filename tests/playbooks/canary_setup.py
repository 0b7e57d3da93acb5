"""A canary-upgrade scene on the fleet's first cluster, shared by the gateway_cutover and
revision_prune tests: revision 1-30-3 installed by the install playbook (one ingress gateway,
its stable Service, tags default and prod-stable), then revision 1-31-0 beside it with the charts
installed directly (the istiod role refuses a second revision), its ingress gateway optionally
held NotReady by the local fleet's hold label. Also a runner for single module tasks, whose
result comes back as JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client

from localfleet import gobuild, paths
from localfleet.stages import HOLD_LABEL
from localfleet.waits import wait_until
from tests.playbooks.conftest import collections_path

OLD, NEW = "1-30-3", "1-31-0"
CLUSTER = "cluster1"
GATEWAY = "istio-ingressgateway"
GATEWAY_NS = "istio-gateways"
LAYOUT_NAMESPACES = ("istio-system", "istio-gateways", "istio-config")
INSTALL_OLD = {"meshfleet_istio_version": "1.30.3",
               "meshfleet_gateways": [{"name": GATEWAY, "kind": "ingress"}]}
INGRESS_PORTS = [
    {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
    {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
    {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
]


def chart(name, version):
    return str(paths.charts_cache() / "all" / f"{name}-{version}.tgz")


def tool_env():
    return dict(os.environ, PATH=f"{gobuild.binaries_dir()}{os.pathsep}{os.environ['PATH']}")


def helm(fleet, *args):
    cmd = ["helm", *args, "--kubeconfig", str(fleet.kubeconfig), "--kube-context", CLUSTER]
    proc = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def helm_install(fleet, tmp_path, release, namespace, chart_file, values, wait):
    values_file = tmp_path / f"{release}.json"
    values_file.write_text(json.dumps(values))
    helm(fleet, "install", release, chart_file, "-n", namespace, "-f", str(values_file),
         *(["--wait", "--timeout", "5m"] if wait else []))


def releases(fleet):
    listed = json.loads(helm(fleet, "list", "-A", "-o", "json"))
    return sorted(f"{r['namespace']}/{r['name']}" for r in listed)


def gateway_values(revision, hold):
    labels = {"istio": "ingressgateway", "istio.io/rev": revision}
    if hold:
        labels[HOLD_LABEL] = "not-ready"
    return {"revision": revision, "replicaCount": 2, "labels": labels,
            "service": {"type": "ClusterIP", "ports": INGRESS_PORTS},
            "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5},
            "podDisruptionBudget": {"minAvailable": 1}}


def install_two_revisions(run_playbook, fleet, api, tmp_path, hold_new_gateway):
    """1-30-3 through the install playbook, 1-31-0 with helm; returns when the new gateway's
    two pods exist (Ready unless held)."""
    run = run_playbook("install", extra_vars=INSTALL_OLD, limit=CLUSTER)
    assert run.rc == 0, run.output[-4000:]
    helm_install(fleet, tmp_path, f"istiod-{NEW}", "istio-system", chart("istiod", "1.31.0"),
                 {"revision": NEW, "meshConfig": {"rootNamespace": "istio-config"}}, wait=True)
    helm_install(fleet, tmp_path, f"{GATEWAY}-{NEW}", GATEWAY_NS, chart("gateway", "1.31.0"),
                 gateway_values(NEW, hold_new_gateway), wait=not hold_new_gateway)
    wait_until(lambda: len(gateway_pods(api, NEW)) == 2, "two gateway pods of " + NEW)


def gateway_pods(api, revision, ready=None):
    pods = client.CoreV1Api(api).list_namespaced_pod(
        GATEWAY_NS, label_selector=f"istio=ingressgateway,istio.io/rev={revision}").items
    pods = [p for p in pods if p.metadata.deletion_timestamp is None]
    if ready is not None:
        pods = [p for p in pods if is_ready(p) == ready]
    return pods


def is_ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def release_hold(api, revision=NEW):
    """Drop the hold label from the gateway's pod template; wait for two Ready, unheld pods."""
    client.AppsV1Api(api).patch_namespaced_deployment(
        f"{GATEWAY}-{revision}", GATEWAY_NS,
        {"spec": {"template": {"metadata": {"labels": {HOLD_LABEL: None}}}}})
    wait_until(lambda: len(gateway_pods(api, revision, ready=True)) == 2
             and len(gateway_pods(api, revision)) == 2
             and not any(HOLD_LABEL in (p.metadata.labels or {}) for p in gateway_pods(api, revision)),
             f"two Ready gateway pods of {revision}")


def tear_down(run_playbook, api, extra_namespaces=()):
    """The uninstall playbook, then wait until the namespaces are gone (the next test module
    starts from an empty cluster)."""
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True}, limit=CLUSTER)
    core = client.CoreV1Api(api)
    for name in extra_namespaces:
        if namespace_exists(api, name):
            core.delete_namespace(name)
    wait_until(lambda: not any(namespace_exists(api, n)
                             for n in LAYOUT_NAMESPACES + tuple(extra_namespaces)),
             "the test's namespaces to be deleted")
    assert run.rc == 0, run.output[-4000:]


def namespace_exists(api, name):
    return any(ns.metadata.name == name for ns in client.CoreV1Api(api).list_namespace().items)


class TaskResult(object):
    def __init__(self, rc, result, output):
        self.rc = rc
        self.result = result
        self.output = output

    @property
    def failed(self):
        return bool(self.result.get("failed"))

    @property
    def changed(self):
        return bool(self.result.get("changed"))

    @property
    def msg(self):
        return self.result.get("msg", "")


def run_module(fleet, workdir, module, args, check=False, diff=False):
    """One task of meshfleet.istio.<module> against cluster1, through ansible-playbook; the
    task's result as the module returned it."""
    args = dict(args, kubeconfig=str(fleet.kubeconfig), context=CLUSTER)
    play = [{"name": "one task", "hosts": CLUSTER, "gather_facts": False,
             "tasks": [{"name": module, f"meshfleet.istio.{module}": args}]}]
    playbook = Path(workdir) / f"{module}.yml"
    playbook.write_text(yaml.safe_dump(play))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(fleet.inventory),
           str(playbook)] + (["--check"] if check else []) + (["--diff"] if diff else [])
    env = dict(tool_env(), ANSIBLE_COLLECTIONS_PATH=collections_path(),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(Path(workdir) / "tmp"), ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
        result = report["plays"][0]["tasks"][0]["hosts"][CLUSTER]
    except (ValueError, KeyError, IndexError) as error:
        raise AssertionError(f"no task result ({error}): {proc.stdout[-3000:]} {proc.stderr[-3000:]}")
    return TaskResult(proc.returncode, result, proc.stdout + proc.stderr)


def deploy_web(api, namespace, replicas=1, tag="prod-stable", app="web", hold=None):
    """A namespace on revision tag `tag` with Deployment `app` of `replicas` pods: a workload an
    upgrade restarts. `hold` (not-ready, fail) is the local fleet's hold for its pods."""
    labels = {"app": app}
    if hold:
        labels[HOLD_LABEL] = hold
    client.CoreV1Api(api).create_namespace(
        {"metadata": {"name": namespace, "labels": {"istio.io/rev": tag}}})
    client.AppsV1Api(api).create_namespaced_deployment(namespace, {
        "metadata": {"name": app},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": app,
                                                       "image": f"example.invalid/{app}:1"}]}}}})


def injected_by(api, namespace):
    """The revisions that injected the live pods of `namespace`."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
    return {(p.metadata.annotations or {}).get("istio.io/rev") for p in pods
            if p.metadata.deletion_timestamp is None}


def mesh_tags(api):
    """{tag: revision} of the cluster's revision tags."""
    adm = client.AdmissionregistrationV1Api(api)
    return {m.metadata.labels["istio.io/tag"]: m.metadata.labels["istio.io/rev"]
            for m in adm.list_mutating_webhook_configuration().items
            if "istio.io/tag" in (m.metadata.labels or {})}
