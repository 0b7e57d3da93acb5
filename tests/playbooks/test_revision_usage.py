"""The in-use rule on a real cluster: the status report (mesh_info's in_use, which status.yml
reports) and revision_prune name the same uses of a revision, whatever uses it; and the three
selector forms of label_selector.py give the answers the apiserver and the controller-manager
give. The Istio scene is installed once, for the in-use tests; the selector test needs none."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import (
    selector_matches,
    service_selects,
    webhook_selects,
)
from localfleet.waits import wait_until
from tests.playbooks.canary_setup import (
    CLUSTER,
    NEW,
    install_two_revisions,
    namespace_exists,
    tear_down,
    tool_env,
)
from tests.playbooks.conftest import collections_path

pytestmark = pytest.mark.fleet

SCRATCH = "usage"
STABLE = {"meshfleet.io/stable-gateway": "usage-gateway"}


def create_pod(api, namespace, name, labels=None):
    client.CoreV1Api(api).create_namespaced_pod(namespace, {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}})


def fresh_namespace(api, name, labels=None):
    core = client.CoreV1Api(api)
    if namespace_exists(api, name):
        core.delete_namespace(name)
        wait_until(lambda: not namespace_exists(api, name), f"deletion of namespace {name}")
    core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})


def is_ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


# ------------------------------------------------------------ selectors, as Kubernetes reads them

def endpoint_slices(api, namespace, service):
    return client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}").items


def create_service(api, namespace, name, selector):
    client.CoreV1Api(api).create_namespaced_service(namespace, {
        "metadata": {"name": name},
        "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]}})


def create_budget(api, namespace, name, selector):
    spec = {"minAvailable": 1}
    if selector is not None:
        spec["selector"] = selector
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        namespace, {"metadata": {"name": name}, "spec": spec})


def budget_counts(api, namespace, name):
    """(expectedPods, currentHealthy) once the disruption controller has seen the budget."""
    budget = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, namespace)
    status = budget.status
    if not status or (status.observed_generation or 0) < budget.metadata.generation:
        return None
    return status.expected_pods or 0, status.current_healthy or 0


def test_selectors_read_as_the_apiserver_and_the_controllers_read_them(api):
    fresh_namespace(api, "selectors")
    pods = {"a": {"app": "a"}, "b": {"app": "b", "tier": "web"}}
    for name, labels in pods.items():
        create_pod(api, "selectors", name, labels)
    core = client.CoreV1Api(api)
    wait_until(lambda: all(is_ready(p) for p in core.list_namespaced_pod("selectors").items)
             and len(core.list_namespaced_pod("selectors").items) == 2, "two Ready pods")

    create_service(api, "selectors", "empty", {})
    create_service(api, "selectors", "selects-a", {"app": "a"})
    wait_until(lambda: any(s.endpoints for s in endpoint_slices(api, "selectors", "selects-a")),
             "an endpoint of Service selects-a")
    time.sleep(2)  # the controller had the time to give Service empty endpoints too
    assert endpoint_slices(api, "selectors", "empty") == []
    assert [service_selects({}, labels) for labels in pods.values()] == [False, False]
    assert [service_selects({"app": "a"}, labels) for labels in pods.values()] == [True, False]

    create_budget(api, "selectors", "everything", {})
    create_budget(api, "selectors", "nothing", None)
    wait_until(lambda: budget_counts(api, "selectors", "everything") == (2, 2),
             "the disruption controller to count both pods under PodDisruptionBudget everything")
    wait_until(lambda: budget_counts(api, "selectors", "nothing") is not None,
             "the disruption controller to observe PodDisruptionBudget nothing")
    assert budget_counts(api, "selectors", "nothing") == (0, 0)
    assert sum(selector_matches({}, labels) for labels in pods.values()) == 2
    assert sum(selector_matches(None, labels) for labels in pods.values()) == 0

    try:
        hook = webhook_with_omitted_selectors(api)
        assert (hook["namespaceSelector"], hook["objectSelector"]) == ({}, {})
        assert webhook_selects(hook["namespaceSelector"], pods["a"])
        assert webhook_selects(None, pods["a"])
    finally:
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(
            "meshfleet-selector-defaults")
    core.delete_namespace("selectors")


def webhook_with_omitted_selectors(api):
    """A webhook for a resource that does not exist (it never fires), its selectors omitted;
    the webhook as the apiserver stored it (raw JSON: the client's models hide {})."""
    adm = client.AdmissionregistrationV1Api(api)
    adm.create_validating_webhook_configuration({
        "metadata": {"name": "meshfleet-selector-defaults"},
        "webhooks": [{"name": "defaults.meshfleet.io", "sideEffects": "None",
                      "admissionReviewVersions": ["v1"], "failurePolicy": "Ignore",
                      "clientConfig": {"url": "https://example.invalid/validate"},
                      "rules": [{"operations": ["CREATE"], "apiGroups": ["meshfleet.io"],
                                 "apiVersions": ["v1"], "resources": ["nothings"]}]}]})
    stored = adm.read_validating_webhook_configuration("meshfleet-selector-defaults",
                                                       _preload_content=False)
    return json.loads(stored.data)["webhooks"][0]


# ------------------------------------------------------------ the in-use rule

@pytest.fixture(scope="module")
def scene(run_playbook, fleet, api, tmp_path_factory):
    """1-30-3 serving with every tag, the validator and the stable Service; 1-31-0 installed
    beside it with its two Ready gateway pods and nothing else."""
    install_two_revisions(run_playbook, fleet, api, tmp_path_factory.mktemp("charts"),
                          hold_new_gateway=False)
    yield
    tear_down(run_playbook, api, (SCRATCH,))


def report_and_prune(fleet, workdir, revision):
    """mesh_info's in_use for `revision`, and what revision_prune (in check mode) names: one
    ansible-playbook run, both read from the same cluster."""
    auth = {"kubeconfig": str(fleet.kubeconfig), "context": CLUSTER}
    play = [{"name": "report and prune", "hosts": CLUSTER, "gather_facts": False, "tasks": [
        {"name": "report", "meshfleet.istio.mesh_info": auth},
        {"name": "prune", "meshfleet.istio.revision_prune": dict(auth, revision=revision),
         "check_mode": True, "ignore_errors": True}]}]
    playbook = Path(workdir) / "report_and_prune.yml"
    playbook.write_text(yaml.safe_dump(play))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(fleet.inventory),
           str(playbook)]
    env = dict(tool_env(), ANSIBLE_COLLECTIONS_PATH=collections_path(),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(Path(workdir) / "tmp"), ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    report, prune = (task["hosts"][CLUSTER] for task in tasks)
    assert "mesh" in report, proc.stdout[-3000:]
    return report["mesh"]["revisions"][revision]["in_use"], prune.get("in_use"), prune


def create_stable_service(api):
    client.CoreV1Api(api).create_namespaced_service(SCRATCH, {
        "metadata": {"name": "usage-gateway", "labels": STABLE},
        "spec": {"selector": {"istio": "ingressgateway", "istio.io/rev": NEW},
                 "ports": [{"port": 80, "targetPort": 8080}]}})


USES = [
    ("its own gateway pods", [], None),
    ("a stable Service", [f"stable gateway Service {SCRATCH}/usage-gateway selects it"],
     create_stable_service),
    ("a namespace label", [f"namespace {SCRATCH}"], None),
    ("a bare pod", [f"pod {SCRATCH}/bare"], lambda api: create_pod(api, SCRATCH, "bare",
                                                                    {"istio.io/rev": NEW})),
]


@pytest.mark.parametrize("used_by, reasons, use", USES, ids=[u[0] for u in USES])
def test_the_report_and_the_prune_agree_on_what_uses_a_revision(scene, api, fleet, tmp_path,
                                                                used_by, reasons, use):
    fresh_namespace(api, SCRATCH, {"istio.io/rev": NEW} if used_by == "a namespace label" else {})
    if use:
        use(api)
    reported, refused, prune = report_and_prune(fleet, tmp_path, NEW)
    assert reported == refused == reasons, prune
    assert bool(prune.get("failed")) == bool(reasons), prune
    if not reasons:
        assert prune["changed"] and f"release istio-system/istiod-{NEW}" in prune["removed"]
