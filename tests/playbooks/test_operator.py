"""The operator role on a cluster of Kubernetes 1.30 (inside the support range of Istio 1.22 and
1.23), with the real in-cluster operators of 1.22.8 and 1.23.6, built from their release trees,
running for the Deployments the role writes. A fleet of one cluster of its own, started for this
module; the tests build on each other in file order."""

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from localfleet import netns, operator_process
from localfleet.fleet import Fleet
from localfleet.waits import wait_until

from .conftest import REPO, WriteCounter

pytestmark = [pytest.mark.fleet, pytest.mark.scenario, pytest.mark.operator_engine]

KUBERNETES = "1.30.3"
OLD, NEW = "1.22.8", "1.23.6"
OPERATOR_NS = "istio-operator"
CRD = "istiooperators.install.istio.io"
PLAYBOOK = REPO / "tests" / "playbooks" / "files" / "operator.yml"


class OperatorFleet:
    def __init__(self, fleet, run_playbook):
        self.fleet, self.cluster, self._run_playbook = fleet, fleet.clusters[0], run_playbook
        api = config.new_client_from_config(config_file=str(fleet.kubeconfig),
                                            context=self.cluster.spec.name)
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.rbac, self.coordination = client.RbacAuthorizationV1Api(api), client.CoordinationV1Api(api)
        self.extensions = client.ApiextensionsV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def run(self, version, state="present", check=False, diff=False):
        return self._run_playbook(PLAYBOOK, timeout=600, inventory=self.fleet.inventory,
                                  extra_vars={"operator_version": version, "operator_state": state},
                                  check=check, diff=diff)

    def deployment_names(self):
        return sorted(d.metadata.name for d in
                      self.apps.list_namespaced_deployment(OPERATOR_NS).items)

    def ready_operator(self, revision):
        try:
            found = self.apps.read_namespaced_deployment(f"istio-operator-{revision}", OPERATOR_NS)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return (found.status.ready_replicas or 0) >= 1

    def lease_holder(self, revision):
        try:
            lease = self.coordination.read_namespaced_lease(
                f"istio-operator-lock-{revision}", OPERATOR_NS)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return lease.spec.holder_identity

    def operator_logs(self, revision):
        return sorted((self.cluster.dir / "operator").glob(f"istio-operator-{revision}-*/operator.log"))


@pytest.fixture(scope="module")
def old_cluster(fleet, run_playbook):
    """A one-cluster fleet on Kubernetes 1.30; the session's fleet is entered again after it."""
    missing = [release for release in (OLD, NEW) if operator_process.operator_binary(release) is None]
    assert not missing, (f"the operators of {', '.join(missing)} are not built: run `python -m "
                         f"localfleet build {' '.join('istio-' + r for r in missing)} "
                         f"kubernetes-{KUBERNETES}`")
    running = Fleet(f"{fleet.name}-k130"[:20])
    running.down()
    running = Fleet(running.name)
    running.up(1, kubernetes=KUBERNETES)
    try:
        yield OperatorFleet(running, run_playbook)
    finally:
        running.down()
        netns.enter(fleet.netns)


def test_the_cluster_runs_kubernetes_1_30(old_cluster):
    assert old_cluster.cluster.api_get("/version")["gitVersion"] == f"v{KUBERNETES}"


def test_the_operator_of_a_revision_runs_the_real_operator_of_its_release(old_cluster):
    result = old_cluster.run(OLD)
    assert result.rc == 0, result.output[-4000:]
    assert result.changed()["cluster1"] > 0
    revision = OLD.replace(".", "-")
    assert old_cluster.ready_operator(revision)
    assert old_cluster.deployment_names() == [f"istio-operator-{revision}"]
    namespace = old_cluster.core.read_namespace(OPERATOR_NS)
    assert namespace.metadata.labels["istio-injection"] == "disabled"
    assert old_cluster.extensions.read_custom_resource_definition(CRD).metadata.name == CRD
    binding = old_cluster.rbac.read_cluster_role_binding(f"istio-operator-{revision}")
    assert binding.subjects[0].name == f"istio-operator-{revision}"
    # The real operator of 1.22.8 took its revision's leader lease through the API, as the
    # service account the chart gives it.
    wait_until(lambda: old_cluster.lease_holder(revision), timeout=90,
               what=f"the leader lease of operator {revision}")
    assert old_cluster.operator_logs(revision), "no operator process was started"


def test_a_second_run_changes_nothing_and_writes_nothing(old_cluster):
    writes = WriteCounter(old_cluster.fleet)
    result = old_cluster.run(OLD)
    assert result.rc == 0, result.output[-4000:]
    assert result.changed() == {"cluster1": 0}
    assert writes.writes() == {"cluster1": []}


def test_check_mode_predicts_the_next_revisions_operator_and_writes_nothing(old_cluster):
    writes = WriteCounter(old_cluster.fleet)
    result = old_cluster.run(NEW, check=True, diff=True)
    assert result.rc == 0, result.output[-4000:]
    assert result.changed()["cluster1"] > 0
    assert f"istio-operator-{NEW.replace('.', '-')}" in result.output
    assert writes.writes() == {"cluster1": []}
    assert old_cluster.deployment_names() == [f"istio-operator-{OLD.replace('.', '-')}"]


def test_two_revisions_operators_run_side_by_side_on_one_crd(old_cluster):
    result = old_cluster.run(NEW)
    assert result.rc == 0, result.output[-4000:]
    old, new = OLD.replace(".", "-"), NEW.replace(".", "-")
    assert old_cluster.deployment_names() == [f"istio-operator-{old}", f"istio-operator-{new}"]
    wait_until(lambda: old_cluster.lease_holder(new), timeout=90,
               what=f"the leader lease of operator {new}")
    assert old_cluster.lease_holder(old)


def test_an_istiooperator_is_reconciled_by_its_own_revisions_operator(old_cluster):
    old = OLD.replace(".", "-")
    _namespace(old_cluster, "istio-system")
    old_cluster.custom.create_namespaced_custom_object(
        "install.istio.io", "v1alpha1", "istio-system", "istiooperators",
        {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
         "metadata": {"name": f"istiod-{old}", "namespace": "istio-system"},
         "spec": {"profile": "minimal", "revision": old, "hub": "docker.io/istio",
                  "tag": OLD, "components": {"base": {"enabled": False}},
                  "values": {"global": {"istioNamespace": "istio-system"}}}})

    def status():
        found = old_cluster.custom.get_namespaced_custom_object(
            "install.istio.io", "v1alpha1", "istio-system", "istiooperators", f"istiod-{old}")
        return (found.get("status") or {}).get("status")

    wait_until(lambda: status() == "HEALTHY", timeout=240,
               what=f"IstioOperator istiod-{old} HEALTHY")
    istiod = old_cluster.apps.read_namespaced_deployment(f"istiod-{old}", "istio-system")
    labels = istiod.metadata.labels
    assert labels["install.operator.istio.io/owning-resource"] == f"istiod-{old}"
    assert labels["operator.istio.io/version"] == OLD
    assert istiod.spec.template.spec.containers[0].image == f"docker.io/istio/pilot:{OLD}"


def _namespace(old_cluster, name):
    try:
        old_cluster.core.read_namespace(name)
    except ApiException as err:
        if err.status != 404:
            raise
        old_cluster.core.create_namespace({"metadata": {"name": name}})


def test_removing_one_revisions_operator_leaves_the_other_and_the_shared_crd(old_cluster):
    old, new = OLD.replace(".", "-"), NEW.replace(".", "-")
    result = old_cluster.run(OLD, state="absent")
    assert result.rc == 0, result.output[-4000:]
    assert old_cluster.deployment_names() == [f"istio-operator-{new}"]
    for read in (old_cluster.rbac.read_cluster_role, old_cluster.rbac.read_cluster_role_binding):
        with pytest.raises(ApiException) as gone:
            read(f"istio-operator-{old}")
        assert gone.value.status == 404
    old_cluster.rbac.read_cluster_role(f"istio-operator-{new}")
    assert old_cluster.extensions.read_custom_resource_definition(CRD).metadata.name == CRD
    assert old_cluster.ready_operator(new)
    again = old_cluster.run(OLD, state="absent")
    assert again.rc == 0 and again.changed() == {"cluster1": 0}, again.output[-4000:]
