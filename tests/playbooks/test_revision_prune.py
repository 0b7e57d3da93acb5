"""meshfleet.istio.revision_prune on a real cluster with two revisions: refused, with every
reason, while a revision serves traffic, is tagged or is used by a namespace or a pod; a dry run
that writes nothing; the prune, which removes exactly the revision's releases and copied
ConfigMap; a second run that writes nothing. The tests run in file order and build on each
other."""

import pytest
from kubernetes import client

from localfleet.waits import wait_until
from tests.playbooks.canary_setup import CLUSTER, GATEWAY, GATEWAY_NS, NEW, OLD, gateway_pods
from tests.playbooks.canary_setup import install_two_revisions, namespace_exists, releases
from tests.playbooks.canary_setup import run_module, tear_down

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

TEST_NAMESPACES = ("shop", "canary", "lab")
REMOVED = [f"release {GATEWAY_NS}/{GATEWAY}-{OLD}", f"ConfigMap {GATEWAY_NS}/istio-{OLD}",
           f"release istio-system/istiod-{OLD}"]


@pytest.fixture(scope="module")
def scene(run_playbook, fleet, api, tmp_path_factory):
    """Both revisions Ready; tags, validator and the stable Service on 1-30-3."""
    install_two_revisions(run_playbook, fleet, api, tmp_path_factory.mktemp("charts"),
                          hold_new_gateway=False)
    yield
    tear_down(run_playbook, api, TEST_NAMESPACES)


@pytest.fixture
def module(fleet, tmp_path, scene):
    def run(module_name, /, check=False, diff=False, **args):
        return run_module(fleet, tmp_path, module_name, args, check=check, diff=diff)
    return run


def create_namespace(api, name, labels=None):
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name, "labels": labels or {}}})


def create_pod(api, namespace, name, labels=None):
    client.CoreV1Api(api).create_namespaced_pod(namespace, {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}})


def injected_by(api, namespace, name):
    pod = client.CoreV1Api(api).read_namespaced_pod(name, namespace)
    return (pod.metadata.annotations or {}).get("istio.io/rev")


def delete_namespaces(api, *names):
    for name in names:
        client.CoreV1Api(api).delete_namespace(name)
    wait_until(lambda: not any(namespace_exists(api, n) for n in names), f"deletion of {names}")


def copied_config_map(revision):
    """What operator-engine layouts copy into gateway namespaces."""
    return {"metadata": {"name": f"istio-{revision}", "labels": {"istio.io/rev": revision}},
            "data": {"mesh": "{}"}}


def test_the_serving_tagged_revision_is_refused_with_every_reason(module, api, write_counter, fleet):
    create_namespace(api, "shop", {"istio.io/rev": "prod-stable"})
    create_pod(api, "shop", "web")
    wait_until(lambda: injected_by(api, "shop", "web") == OLD, f"shop/web injected by {OLD}")
    client.CoreV1Api(api).create_namespaced_config_map(GATEWAY_NS, copied_config_map(OLD))
    counter = write_counter()
    for check in (True, False):
        run = module("revision_prune", revision=OLD, check=check)
        assert run.failed and run.rc != 0
        assert run.result.get("in_use") == [
            "tag default", "tag prod-stable", "namespace shop", "pod shop/web",
            "validator istiod-default-validator",
            f"stable gateway Service {GATEWAY_NS}/{GATEWAY} selects it"], run.msg
        assert run.msg.startswith(f"revision {OLD} is still in use, not removed: tag default; "
                                  "tag prod-stable; namespace shop; pod shop/web; ")
    assert counter.writes()[CLUSTER] == []
    assert f"istio-system/istiod-{OLD}" in releases(fleet)


def test_a_namespace_or_a_pod_on_the_new_revision_is_a_use_its_own_gateways_are_not(
        module, api, write_counter, fleet):
    create_namespace(api, "canary", {"istio.io/rev": NEW})
    create_namespace(api, "lab")
    create_pod(api, "lab", "probe", {"istio.io/rev": NEW})
    assert len(gateway_pods(api, NEW, ready=True)) == 2
    counter = write_counter()
    run = module("revision_prune", revision=NEW)
    assert run.failed
    assert run.result["in_use"] == ["namespace canary", "pod lab/probe"], run.result
    assert counter.writes()[CLUSTER] == []
    assert f"istio-system/istiod-{NEW}" in releases(fleet)
    delete_namespaces(api, "canary", "lab")


def move_everything_to_the_new_revision(module, api):
    for tag in ("default", "prod-stable"):
        run = module("revision_tag", tag=tag, revision=NEW, overwrite=True)
        assert run.rc == 0, run.output[-3000:]
    run = module("gateway_cutover", name=GATEWAY, namespace=GATEWAY_NS, revision=NEW)
    assert run.rc == 0, run.output[-3000:]
    delete_namespaces(api, "shop")


def test_check_mode_predicts_the_prune_and_writes_nothing(module, api, write_counter, fleet):
    move_everything_to_the_new_revision(module, api)
    counter = write_counter()
    run = module("revision_prune", revision=OLD, check=True, diff=True)
    assert run.rc == 0 and run.changed, run.output[-3000:]
    assert run.result["removed"] == REMOVED
    headers = [d["before_header"] for d in run.result["diff"]]
    assert headers == [f"release {GATEWAY_NS}/{GATEWAY}-{OLD}", f"{GATEWAY_NS}/ConfigMap/istio-{OLD}",
                       f"release istio-system/istiod-{OLD}"]
    assert f"name: {GATEWAY}-{OLD}" in run.result["diff"][0]["before"]
    assert f"name: istiod-{OLD}" in run.result["diff"][2]["before"]
    assert run.result["diff"][1]["after"] == {} and run.result["diff"][2]["after"] == ""
    assert counter.writes()[CLUSTER] == []
    assert f"istio-system/istiod-{OLD}" in releases(fleet)


def test_prune_removes_exactly_the_revision(module, api, fleet):
    crds_before = crd_names(api)
    run = module("revision_prune", revision=OLD)
    assert run.rc == 0 and run.changed, run.output[-3000:]
    assert run.result["removed"] == REMOVED and run.result["in_use"] == []
    assert releases(fleet) == [f"{GATEWAY_NS}/{GATEWAY}-{NEW}", "istio-system/istio-base",
                               f"istio-system/istiod-{NEW}"]
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    assert [d.metadata.name for d in apps.list_deployment_for_all_namespaces(
        label_selector=f"istio.io/rev={OLD}").items] == []
    assert [c.metadata.name for c in core.list_namespaced_config_map(GATEWAY_NS).items
            if c.metadata.name.startswith("istio-1-")] == []
    assert apps.read_namespaced_deployment(f"istiod-{NEW}", "istio-system").status.ready_replicas >= 1
    assert len(gateway_pods(api, NEW, ready=True)) == 2
    assert all(namespace_exists(api, n) for n in ("istio-system", GATEWAY_NS, "istio-config"))
    assert crd_names(api) == crds_before and "gateways.networking.istio.io" in crds_before
    assert core.read_namespaced_service(GATEWAY, GATEWAY_NS).spec.selector["istio.io/rev"] == NEW


def crd_names(api):
    return sorted(c.metadata.name for c in
                  client.ApiextensionsV1Api(api).list_custom_resource_definition().items)


def test_a_second_run_changes_nothing_and_writes_nothing(module, write_counter):
    counter = write_counter()
    for check in (True, False):
        run = module("revision_prune", revision=OLD, check=check)
        assert run.rc == 0 and not run.changed, run.output[-3000:]
        assert run.result["removed"] == [] and run.result["in_use"] == []
    assert counter.writes()[CLUSTER] == []
