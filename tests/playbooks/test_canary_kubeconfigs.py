"""A fleet kept as one kubeconfig file per cluster, in an INI inventory whose host names and
contexts have dots and capitals: install, the canary gate refusing a later wave before the canary
passed (read through the canary's own file, from the inventory or from meshfleet_canary_contexts
as a slice gets it), a full canary upgrade, and an install of the older version refused with the
way back. Needs two clusters at least (MESHFLEET_TEST_CLUSTERS=2 is enough). The tests build on
each other in file order."""

import sys

import pytest
import yaml
from kubernetes import client, config

from localfleet.waits import wait_until
from tests.playbooks.canary_setup import deploy_web, injected_by, mesh_tags

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

OLD, NEW = "1-30-3", "1-31-0"
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_prune_after": 0,
           "meshfleet_rollout_timeout": 180}
APP = "shop"


def host_name(index):
    return f"Prod.EU-{index + 1}"


@pytest.fixture(scope="module")
def kubeconfigs(fleet, tmp_path_factory):
    """{host: (its own kubeconfig file, its context)}: the fleet's one file split per cluster,
    each context renamed to the host name."""
    assert len(fleet.clusters) >= 2, "these tests need two clusters at least"
    shared = yaml.safe_load(fleet.kubeconfig.read_text())
    folder = tmp_path_factory.mktemp("kubeconfigs")
    files = {}
    for index, cluster in enumerate(fleet.clusters[:2]):
        name = host_name(index)
        context = next(c for c in shared["contexts"] if c["name"] == cluster.spec.name)
        entry = {
            "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
            "clusters": [dict(c, name=name) for c in shared["clusters"]
                         if c["name"] == context["context"]["cluster"]],
            "users": [u for u in shared["users"] if u["name"] == context["context"]["user"]],
            "contexts": [{"name": name, "context": dict(context["context"], cluster=name)}],
        }
        path = folder / f"{name.lower()}.yaml"
        path.write_text(yaml.safe_dump(entry))
        path.chmod(0o600)
        files[name] = (path, name)
    return files


@pytest.fixture(scope="module")
def inventory(kubeconfigs, tmp_path_factory):
    (canary, (canary_file, _)), (wave, (wave_file, _)) = list(kubeconfigs.items())[:2]
    path = tmp_path_factory.mktemp("ini") / "fleet.ini"
    path.write_text(
        "[canary]\n"
        f"{canary} meshfleet_kubeconfig={canary_file} meshfleet_context={canary}\n\n"
        "[wave1]\n"
        f"{wave} meshfleet_kubeconfig={wave_file} meshfleet_context={wave}\n\n"
        "[all:vars]\n"
        "ansible_connection=local\n"
        f"ansible_python_interpreter={sys.executable}\n")
    return path


@pytest.fixture(scope="module")
def apis(kubeconfigs):
    return {host: config.new_client_from_config(config_file=str(path), context=context)
            for host, (path, context) in kubeconfigs.items()}


def record(api):
    return client.CoreV1Api(api).read_namespaced_config_map("meshfleet-upgrade",
                                                           "kube-system").data


def test_install_through_one_kubeconfig_per_cluster(run_playbook, inventory, apis):
    run = run_playbook("install", inventory=inventory,
                       extra_vars={"meshfleet_istio_version": "1.30.3"})
    assert run.rc == 0, run.output[-4000:]
    assert sorted(run.recap()) == sorted(apis)
    for host, api in apis.items():
        assert mesh_tags(api) == {"default": OLD, "prod-stable": OLD}, host
        deploy_web(api, APP)
    for host, api in apis.items():
        wait_until(lambda: injected_by(api, APP) == {OLD}, what=f"web on {OLD} in {host}")


@pytest.mark.parametrize("canary_contexts", ["inventory", "slice"])
def test_the_gate_reads_the_canary_through_its_own_kubeconfig(run_playbook, inventory, kubeconfigs,
                                                              write_counter, canary_contexts):
    """A run of the later wave alone, before the canary was upgraded: the gate reads the canary's
    (absent) record through the canary's own file and refuses; nothing is written."""
    canary, (canary_file, context) = next(iter(kubeconfigs.items()))
    extra = dict(UPGRADE, meshfleet_hosts="wave1")
    if canary_contexts == "slice":
        extra["meshfleet_canary_contexts"] = [{"context": context, "kubeconfig": str(canary_file)}]
    counter = write_counter()
    run = run_playbook("upgrade", inventory=inventory, extra_vars=extra)
    assert run.rc != 0
    assert f"the canary wave has not passed an upgrade to {NEW}" in run.output, run.output[-4000:]
    assert f"{canary}: no upgrade recorded" in run.output, run.output[-4000:]
    assert "unreadable" not in run.output and "Expected object with name" not in run.output
    assert all(writes == [] for writes in counter.writes().values()), counter.writes()


def test_a_full_canary_upgrade_with_one_kubeconfig_per_cluster(run_playbook, inventory, apis):
    run = run_playbook("upgrade", inventory=inventory, extra_vars=UPGRADE)
    assert run.rc == 0, run.output[-6000:]
    assert run.failed_hosts() == []
    for host, api in apis.items():
        assert mesh_tags(api) == {"default": NEW, "prod-stable": NEW}, host
        assert record(api)["phase"] == "passed" and record(api)["revision"] == NEW, host
        assert injected_by(api, APP) == {NEW}, host
        gateway = client.CoreV1Api(api).read_namespaced_service("istio-ingressgateway",
                                                               "istio-gateways")
        assert gateway.spec.selector["istio.io/rev"] == NEW


def test_installing_the_older_version_says_there_is_no_downgrade(run_playbook, inventory,
                                                                 write_counter):
    counter = write_counter()
    run = run_playbook("install", inventory=inventory,
                       extra_vars={"meshfleet_istio_version": "1.30.3"})
    assert run.rc != 0
    assert "meshfleet_istio_version 1.30.3 is older than the installed 1.31" in run.output, \
        run.output[-4000:]
    assert "meshfleet does not downgrade" in run.output
    assert "use the upgrade playbook" not in run.output
    assert all(writes == [] for writes in counter.writes().values()), counter.writes()


def test_cleanup(run_playbook, inventory, apis):
    for api in apis.values():
        client.CoreV1Api(api).delete_namespace(APP)
    run = run_playbook("uninstall", inventory=inventory, extra_vars={"meshfleet_force": True})
    assert run.rc == 0, run.output[-3000:]
