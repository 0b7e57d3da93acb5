"""The operator role on a cluster of Kubernetes 1.30 (inside the support range of Istio 1.22 and
1.23), with the real in-cluster operators of 1.22.8 and 1.23.6, built from their release trees,
running for the Deployments the role writes. A fleet of one cluster of its own, started for this
module; the tests build on each other in file order."""

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from localfleet import audit, netns, operator_process
from localfleet.fleet import Fleet
from localfleet.waits import wait_until

from .conftest import REPO, WriteCounter

pytestmark = [pytest.mark.fleet, pytest.mark.scenario, pytest.mark.operator_engine]

KUBERNETES = "1.30.3"
OLD, NEW = "1.22.8", "1.23.6"
OPERATOR_NS = "istio-operator"
CRD = "istiooperators.install.istio.io"
PLAYBOOK = REPO / "tests" / "playbooks" / "files" / "operator.yml"
ENGINE_PLAYBOOK = REPO / "tests" / "playbooks" / "files" / "operator_engine.yml"


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

    def run_engine(self, version, canary=False, check=False, diff=False):
        return self._run_playbook(ENGINE_PLAYBOOK, timeout=900, inventory=self.fleet.inventory,
                                  extra_vars={"istio_version": version, "canary": canary},
                                  check=check, diff=diff)

    def istiods(self):
        return {d.metadata.name: d for d in
                self.apps.list_namespaced_deployment("istio-system").items}

    def tag_revision(self, tag):
        webhook = client.AdmissionregistrationV1Api(self.apps.api_client) \
            .read_mutating_webhook_configuration(f"istio-revision-tag-{tag}")
        return webhook.metadata.labels["istio.io/rev"]

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


def _create_control_plane(old_cluster, release):
    revision = release.replace(".", "-")
    old_cluster.custom.create_namespaced_custom_object(
        "install.istio.io", "v1alpha1", "istio-system", "istiooperators",
        {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
         "metadata": {"name": f"istiod-{revision}", "namespace": "istio-system"},
         "spec": {"profile": "minimal", "revision": revision, "hub": "docker.io/istio",
                  "tag": release, "components": {"base": {"enabled": False}},
                  "values": {"global": {"istioNamespace": "istio-system"}}}})
    wait_until(lambda: _iop_status(old_cluster, f"istiod-{revision}") == "HEALTHY", timeout=240,
               what=f"IstioOperator istiod-{revision} HEALTHY")


def _iop_status(old_cluster, name):
    """The IstioOperator's status.status; None while it has none, "gone" once deleted."""
    try:
        found = old_cluster.custom.get_namespaced_custom_object(
            "install.istio.io", "v1alpha1", "istio-system", "istiooperators", name)
    except ApiException as err:
        if err.status == 404:
            return "gone"
        raise
    return (found.get("status") or {}).get("status")


def test_an_istiooperator_is_reconciled_by_its_own_revisions_operator(old_cluster):
    old = OLD.replace(".", "-")
    _namespace(old_cluster, "istio-system")
    _create_control_plane(old_cluster, OLD)
    istiod = old_cluster.apps.read_namespaced_deployment(f"istiod-{old}", "istio-system")
    labels = istiod.metadata.labels
    assert labels["install.operator.istio.io/owning-resource"] == f"istiod-{old}"
    assert labels["operator.istio.io/version"] == OLD
    assert istiod.spec.template.spec.containers[0].image == f"docker.io/istio/pilot:{OLD}"


def test_deleting_an_istiooperator_prunes_only_its_revision_once_its_istiod_has_no_proxies(
        old_cluster):
    """The operator asks each Running istiod pod of the revision for its connected proxies
    (`/debug/syncz` through a port-forward) before it removes the revision's objects and lets
    its IstioOperator go; the other revision's control plane stays."""
    old, new = OLD.replace(".", "-"), NEW.replace(".", "-")
    _create_control_plane(old_cluster, NEW)
    since = audit.mark(old_cluster.cluster.audit_log)
    old_cluster.custom.delete_namespaced_custom_object(
        "install.istio.io", "v1alpha1", "istio-system", "istiooperators", f"istiod-{old}")
    wait_until(lambda: _iop_status(old_cluster, f"istiod-{old}") == "gone", timeout=240,
               what=f"IstioOperator istiod-{old} removed by its operator")
    istiods = sorted(d.metadata.name for d in
                     old_cluster.apps.list_namespaced_deployment("istio-system").items)
    assert istiods == [f"istiod-{new}"]
    assert old_cluster.core.read_namespaced_service(f"istiod-{new}", "istio-system")
    with pytest.raises(ApiException) as gone:
        old_cluster.core.read_namespaced_service(f"istiod-{old}", "istio-system")
    assert gone.value.status == 404
    forwards = [e for e in audit.events(old_cluster.cluster.audit_log, since)
                if (e.get("objectRef") or {}).get("subresource") == "portforward"
                and e.get("stage") == "ResponseComplete"]
    asked = {(audit.acting_user(e), e["objectRef"]["name"].rsplit("-", 2)[0]) for e in forwards}
    assert (f"system:serviceaccount:{OPERATOR_NS}:istio-operator-{old}", f"istiod-{old}") in asked
    assert _iop_status(old_cluster, f"istiod-{new}") == "HEALTHY"


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


# ---------------------------------------------------------------- the operator engine

def test_the_operator_engine_installs_a_revision_through_its_own_istiooperator(old_cluster):
    """From a cluster with no control plane: the revision's operator, then meshfleet's
    IstioOperator istiod-<rev> (with the base component), reconciled by the real operator,
    then the default and stable tags."""
    new = NEW.replace(".", "-")
    old_cluster.custom.delete_namespaced_custom_object(
        "install.istio.io", "v1alpha1", "istio-system", "istiooperators", f"istiod-{new}")
    wait_until(lambda: _iop_status(old_cluster, f"istiod-{new}") == "gone", timeout=240,
               what=f"the hand-written IstioOperator istiod-{new} removed")
    old = OLD.replace(".", "-")
    result = old_cluster.run_engine(OLD)
    assert result.rc == 0, result.output[-4000:]
    iop = old_cluster.custom.get_namespaced_custom_object(
        "install.istio.io", "v1alpha1", "istio-system", "istiooperators", f"istiod-{old}")
    assert iop["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshfleet"
    assert iop["status"]["status"] == "HEALTHY"
    istiod = old_cluster.istiods()[f"istiod-{old}"]
    assert istiod.metadata.labels["install.operator.istio.io/owning-resource"] == f"istiod-{old}"
    assert (istiod.status.ready_replicas or 0) >= 1
    assert istiod.spec.template.spec.containers[0].image == f"docker.io/istio/pilot:{OLD}"
    assert old_cluster.tag_revision("default") == old
    assert old_cluster.tag_revision("prod-stable") == old
    # the base component: the Istio CRDs of 1.22.8
    crd = old_cluster.extensions.read_custom_resource_definition("virtualservices.networking.istio.io")
    assert crd.metadata.labels["install.operator.istio.io/owning-resource"] == f"istiod-{old}"
    # The operator writes the default tag itself after the first install (`istioctl tag
    # generate`'s objects, with its owner labels, marked not to be pruned while it reconciles);
    # meshfleet keeps it where it points. Deleting the IstioOperator would delete it while it
    # still carries the revision's label: tags move before a revision goes.
    validator = client.AdmissionregistrationV1Api(old_cluster.apps.api_client) \
        .read_validating_webhook_configuration("istiod-default-validator")
    labels = validator.metadata.labels
    assert labels["istio.io/rev"] == old
    assert labels["install.operator.istio.io/owning-resource"] == f"istiod-{old}"
    assert labels["install.operator.istio.io/owning-resource-not-pruned"] == "true"
    # the ingress gateway: the operator's Deployment of the revision, behind meshfleet's
    # stable Service
    gateway = old_cluster.apps.read_namespaced_deployment(f"istio-ingressgateway-{old}",
                                                         "istio-gateways")
    assert gateway.metadata.labels["install.operator.istio.io/owning-resource"] == \
        f"istio-ingressgateway-{old}"
    assert (gateway.status.ready_replicas or 0) >= 2  # the HPA's minimum
    stable = old_cluster.core.read_namespaced_service("istio-ingressgateway", "istio-gateways")
    assert stable.spec.selector == {"istio": "ingressgateway", "istio.io/rev": old}
    pods = old_cluster.core.list_namespaced_pod(
        "istio-gateways", label_selector=f"istio=ingressgateway,istio.io/rev={old}").items
    assert pods and all(p.metadata.annotations.get("istio.io/rev") == old for p in pods)


def test_a_second_operator_engine_run_changes_nothing_and_writes_nothing(old_cluster):
    writes = WriteCounter(old_cluster.fleet)
    result = old_cluster.run_engine(OLD)
    assert result.rc == 0, result.output[-4000:]
    assert result.changed() == {"cluster1": 0}
    assert writes.writes() == {"cluster1": []}


def test_check_mode_predicts_the_canary_istiooperator_and_writes_nothing(old_cluster):
    writes = WriteCounter(old_cluster.fleet)
    result = old_cluster.run_engine(NEW, canary=True, check=True, diff=True)
    assert result.rc == 0, result.output[-4000:]
    assert f"istiod-{NEW.replace('.', '-')}" in result.output
    assert writes.writes() == {"cluster1": []}


def test_a_canary_revision_by_the_operator_engine_runs_beside_the_first(old_cluster):
    old, new = OLD.replace(".", "-"), NEW.replace(".", "-")
    result = old_cluster.run_engine(NEW, canary=True)
    assert result.rc == 0, result.output[-4000:]
    assert {f"istiod-{old}", f"istiod-{new}"} <= set(old_cluster.istiods())
    canary = old_cluster.custom.get_namespaced_custom_object(
        "install.istio.io", "v1alpha1", "istio-system", "istiooperators", f"istiod-{new}")
    assert canary["spec"]["components"]["base"] == {"enabled": False}
    assert old_cluster.tag_revision("default") == old  # a canary moves no tag
    old_cluster.apps.read_namespaced_deployment(f"istio-ingressgateway-{new}", "istio-gateways")
    stable = old_cluster.core.read_namespaced_service("istio-ingressgateway", "istio-gateways")
    assert stable.spec.selector["istio.io/rev"] == old  # the cut-over is the upgrade's
    again = old_cluster.run_engine(NEW, canary=True)
    assert again.rc == 0 and again.changed() == {"cluster1": 0}, again.output[-4000:]
