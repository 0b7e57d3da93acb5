"""meshfleet run by a ServiceAccount that holds only what rbac/ grants, on apiservers that enforce
RBAC: install, status, upgrade (breaking a stale lock), rollback, the pruning rerun, an install
rerun and uninstall succeed, every request is the ServiceAccount's, and the committed roles are
exactly what the runs needed plus the permissions of the roles Istio's charts create. A role
with one rule removed makes the install fail with a message naming the cluster and the missing
permission. The tests build on each other in file order; the module starts and ends with
clusters without Istio.

MESHFLEET_RBAC_DERIVE=1 (hack/derive-rbac) runs the same scenario with the ServiceAccount also
bound to cluster-admin, so that a run needing more than rbac/ grants still succeeds, and writes
the audit-log markers to MESHFLEET_RBAC_MARKS; `hack/rbac_derivation.py` then derives
the roles from what the ServiceAccount did."""

import datetime
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from hack import rbac_derivation as rbac
from localfleet import audit, audit_requests, gobuild
from localfleet.pytest_plugin import api_client
from localfleet.waits import wait_until
from tests.playbooks.canary_setup import mesh_tags, namespace_exists
from tests.playbooks.conftest import collections_path

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

REPO = Path(__file__).resolve().parents[2]
RBAC_DIR = REPO / "rbac"
DERIVE = os.environ.get("MESHFLEET_RBAC_DERIVE") == "1"
IDENTITY = rbac.service_account_user()
ADMIN = "meshfleet-admin"
OLD, NEW = "1-30-3", "1-31-0"
APP = "shop"
LAYOUT = ("istio-system", "istio-gateways", "istio-config")
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_canary_hosts": "cluster1",
           "meshfleet_prune_after": 0, "meshfleet_rollout_timeout": 120}
HINT = "grant it (see rbac/meshfleet-clusterrole.yml and rbac/meshfleet-role.yml"


@dataclass
class Identity:
    kubeconfig: Path
    tokens: dict
    marks: dict
    outputs: list = field(default_factory=list)


@pytest.fixture(scope="module")
def apis(fleet):
    return {c.spec.name: api_client(fleet, c.spec.name) for c in fleet.clusters}


def mint_token(api):
    """A token for the ServiceAccount from the TokenRequest API (two hours)."""
    request = client.CoreV1Api(api).create_namespaced_service_account_token(
        rbac.SERVICE_ACCOUNT, rbac.SERVICE_ACCOUNT_NAMESPACE,
        {"spec": {"expirationSeconds": 7200}})
    return request.status.token


def write_kubeconfig(fleet, tokens, path):
    """One context per cluster (named as the fleet's), each with the cluster's own token."""
    admin = json.loads(fleet.kubeconfig.read_text())
    clusters = [c for c in admin["clusters"] if c["name"] in tokens]
    config = {"apiVersion": "v1", "kind": "Config", "clusters": clusters,
              "users": [{"name": f"meshfleet@{name}", "user": {"token": token}}
                        for name, token in tokens.items()],
              "contexts": [{"name": name, "context": {"cluster": name, "user": f"meshfleet@{name}"}}
                           for name in tokens],
              "current-context": next(iter(tokens))}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


@pytest.fixture(scope="module")
def identity(fleet, apis, tmp_path_factory, run_playbook):
    # A known start: no Istio namespaces, CRDs, run lock or upgrade record left by earlier
    # modules (the requests of a first install on a fresh cluster are part of the scenario).
    for name, api in apis.items():
        wait_until(lambda: not any(namespace_exists(api, n) for n in LAYOUT + (APP,)),
                   what=f"{name} without Istio (the previous module's namespaces gone)")
        for crd in istio_crds(api):
            client.ApiextensionsV1Api(api).delete_custom_resource_definition(crd)
        wait_until(lambda: not istio_crds(api), what=f"{name} without Istio's CRDs")
    for cluster in fleet.clusters:
        cluster.kubectl("delete", "--ignore-not-found", "-n", "kube-system",
                        "lease/meshfleet-run-lock", "configmap/meshfleet-upgrade")
    for cluster in fleet.clusters:
        if not DERIVE:
            cluster.kubectl("apply", "-f", str(RBAC_DIR))
        else:  # the ServiceAccount and its bindings, and cluster-admin
            cluster.kubectl("apply", "-f", str(RBAC_DIR / rbac.FILES["serviceaccount"]))
            cluster.kubectl("create", "clusterrolebinding", "meshfleet-derive",
                            "--clusterrole=cluster-admin",
                            f"--serviceaccount={rbac.SERVICE_ACCOUNT_NAMESPACE}:{rbac.SERVICE_ACCOUNT}")
    tokens = {name: mint_token(api) for name, api in apis.items()}
    path = tmp_path_factory.mktemp("identity") / "meshfleet.kubeconfig"
    write_kubeconfig(fleet, tokens, path)
    marks = audit_requests.mark_fleet(fleet)
    if os.environ.get("MESHFLEET_RBAC_MARKS"):
        Path(os.environ["MESHFLEET_RBAC_MARKS"]).write_text(json.dumps(marks) + "\n")
    yield Identity(path, tokens, marks)
    if any(namespace_exists(api, n) for api in apis.values() for n in LAYOUT):  # stopped midway
        run_playbook("uninstall", extra_vars={"meshfleet_force": True, "meshfleet_remove_crds": True})
    for cluster in fleet.clusters:
        cluster.kubectl("delete", "--ignore-not-found", "-n", "kube-system",
                        "lease/meshfleet-run-lock", "configmap/meshfleet-upgrade")
        cluster.kubectl("delete", "--ignore-not-found", "-f", str(RBAC_DIR))
        cluster.kubectl("delete", "--ignore-not-found", "clusterrolebinding", "meshfleet-derive")
        cluster.kubectl("delete", "--ignore-not-found", "namespace", APP)
    for name, api in apis.items():
        wait_until(lambda: not any(namespace_exists(api, n)
                                   for n in (APP, rbac.SERVICE_ACCOUNT_NAMESPACE) + LAYOUT),
                   what=f"{name}: the module's namespaces gone")


def istio_crds(api):
    return [c.metadata.name for c in
            client.ApiextensionsV1Api(api).list_custom_resource_definition().items
            if c.spec.group.endswith("istio.io")]


class Window:
    """The requests at every apiserver from now on: the identity's, and the admin's writes."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.marks = audit_requests.mark_fleet(fleet)

    def requests(self, cluster):
        return audit_requests.requests(cluster.audit_log, self.marks[cluster.spec.name], IDENTITY)

    def denied(self, cluster):
        return audit_requests.denied(cluster.audit_log, self.marks[cluster.spec.name], IDENTITY)

    def assert_made_by_the_identity(self, clusters=None):
        """Every named cluster was written to by the identity, never by the fleet's admin
        (the stand-in's writes act as istiod's ServiceAccounts), and nothing was refused."""
        for cluster in self.fleet.clusters:
            if clusters and cluster.spec.name not in clusters:
                continue
            mark = self.marks[cluster.spec.name]
            assert audit.writes(cluster.audit_log, mark, user=IDENTITY), cluster.spec.name
            assert [audit.describe(e) for e in audit.writes(cluster.audit_log, mark, user=ADMIN)] == []
            assert self.denied(cluster) == [], cluster.spec.name


def run_as_identity(run_playbook, identity, playbook, extra_vars=None, **options):
    run = run_playbook(playbook, extra_vars=dict(extra_vars or {},
                                                 meshfleet_kubeconfig=str(identity.kubeconfig)),
                       **options)
    identity.outputs.append(run.output)
    return run


def istiod_revisions(api):
    return sorted(d.metadata.name for d in
                  client.AppsV1Api(api).list_namespaced_deployment("istio-system").items)


def pods_on(api, revision):
    return sorted(p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(APP).items
                  if (p.metadata.annotations or {}).get("istio.io/rev") == revision
                  and p.metadata.deletion_timestamp is None)


def default_sidecar(api):
    return client.CustomObjectsApi(api).list_namespaced_custom_object(
        "networking.istio.io", "v1", "istio-config", "sidecars")["items"]


@pytest.mark.skipif(DERIVE, reason="the ServiceAccount is cluster-admin while roles are derived")
def test_a_role_without_the_namespaces_rule_fails_naming_cluster_and_permission(
        run_playbook, identity, fleet, apis):
    """The committed ClusterRole less the rule that lets meshfleet write namespaces: the install
    stops at its first write, on the cluster that has the narrower role, and says what to grant."""
    committed = next(o for o in rbac.objects_in((RBAC_DIR / rbac.FILES["clusterrole"]).read_text())
                     if o["metadata"]["name"] == rbac.ROLE)
    narrowed = dict(committed, rules=[r for r in committed["rules"]
                                      if not ("namespaces" in r["resources"] and "patch" in r["verbs"])])
    assert len(narrowed["rules"]) == len(committed["rules"]) - 1
    cluster2 = fleet.cluster("cluster2")
    cluster2.kubectl("apply", "-f", "-", stdin=json.dumps(narrowed))
    try:
        window = Window(fleet)
        run = run_as_identity(run_playbook, identity, "install", limit="cluster2",
                              extra_vars={"meshfleet_istio_version": "1.30.3"})
    finally:
        cluster2.kubectl("apply", "-f", str(RBAC_DIR / rbac.FILES["clusterrole"]))
    assert run.rc != 0
    assert run.failed_hosts() == ["cluster2"], run.recap()
    assert (f"cluster2: the identity {IDENTITY} may not patch namespaces in namespace istio-config; "
            f"{HINT}") in run.output, run.output[-5000:]
    # The apiserver refused exactly that, and nothing was written but the run lock, taken for
    # that first write and given back.
    refused = {(r.group, r.resource, r.verb, r.namespace) for r, _ in window.denied(cluster2)}
    assert refused == {("", "namespaces", "patch", "istio-config")}
    assert [audit.describe(e) for e in audit.writes(cluster2.audit_log, window.marks["cluster2"],
                                                    user=IDENTITY)
            if e["responseStatus"]["code"] != 403
            and (e.get("objectRef") or {}).get("resource") != "leases"] == []
    assert not namespace_exists(apis["cluster2"], "istio-config")


def test_install_as_the_service_account(run_playbook, identity, fleet, apis):
    window = Window(fleet)
    run = run_as_identity(run_playbook, identity, "install", extra_vars={
        "meshfleet_istio_version": "1.30.3", "meshfleet_application_namespaces": [APP],
        "meshfleet_default_sidecar": True})
    assert run.rc == 0, run.output[-5000:]
    window.assert_made_by_the_identity()
    for name, api in apis.items():
        assert istiod_revisions(api) == [f"istiod-{OLD}"], name
        assert mesh_tags(api) == {"default": OLD, "prod-stable": OLD}, name
        assert [s["metadata"]["name"] for s in default_sidecar(api)] == ["default"], name


def deploy_workloads(api):
    """Two Deployments (one behind a PodDisruptionBudget: evictions), two StatefulSets (OnDelete:
    evictions; RollingUpdate: a rollout restart), a DaemonSet and a bare pod, which keeps the old
    revision in use until it goes."""
    core, apps, policy = client.CoreV1Api(api), client.AppsV1Api(api), client.PolicyV1Api(api)

    def template(app):
        return {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": app, "image": f"example.invalid/{app}:1"}]}}

    for name in ("web", "api"):
        apps.create_namespaced_deployment(APP, {"metadata": {"name": name}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": template(name)}})
    policy.create_namespaced_pod_disruption_budget(APP, {"metadata": {"name": "api"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}})
    for name, strategy in (("db", "OnDelete"), ("cache", "RollingUpdate")):
        apps.create_namespaced_stateful_set(APP, {"metadata": {"name": name}, "spec": {
            "replicas": 1, "serviceName": name, "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": strategy}, "template": template(name)}})
    apps.create_namespaced_daemon_set(APP, {"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}}, "template": template("agent")}})
    core.create_namespaced_pod(APP, {"metadata": {"name": "bare", "labels": {"app": "bare"}},
                                     "spec": template("bare")["spec"]})


def test_workloads_join_the_old_revision(identity, apis):
    for api in apis.values():
        deploy_workloads(api)
    for name, api in apis.items():
        # 2 web + 2 api + 1 db + 1 cache + 3 agent (one per node) + the bare pod
        wait_until(lambda: len(pods_on(api, OLD)) == 10, what=f"{name}: 10 pods on {OLD}")


def test_status_as_the_service_account_logs_no_credential(run_playbook, identity, fleet,
                                                          monkeypatch, tmp_path):
    # The results carry the modules' arguments ("invocation"), and they are printed.
    monkeypatch.setenv("ANSIBLE_INJECT_INVOCATION", "1")
    monkeypatch.setenv("ANSIBLE_VERBOSITY", "3")
    window = Window(fleet)
    run = run_as_identity(run_playbook, identity, "status",
                          extra_vars={"meshfleet_report_dir": str(tmp_path)})
    assert run.rc == 0, run.output[-5000:]
    report = json.loads((tmp_path / "fleet.json").read_text())
    assert {name: list(mesh["revisions"]) for name, mesh in report.items()} == {
        name: [OLD] for name in ("cluster1", "cluster2", "cluster3")}
    assert f'"kubeconfig": "{identity.kubeconfig}"' in run.output  # the arguments were shown
    for token in identity.tokens.values():
        assert token not in run.output
    for cluster in fleet.clusters:
        assert window.requests(cluster), cluster.spec.name
        assert window.denied(cluster) == []


@pytest.mark.parametrize("module,args", [("mesh_info", {}),
                                         ("revision_prune", {"revision": "1-29-0"})])
def test_a_kubeconfig_given_inline_is_masked_in_the_output(identity, module, args):
    """kubernetes.core's auth options take a kubeconfig's content too; its credentials never
    show, not even in the printed module arguments (revision_prune also hands it to helm)."""
    kubeconfig = yaml.safe_load(identity.kubeconfig.read_text())
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-vvv",
         "-m", f"meshfleet.istio.{module}", "-a",
         json.dumps(dict(args, kubeconfig=kubeconfig, context="cluster2")),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(),
                 ANSIBLE_INJECT_INVOCATION="1", PATH=f"{gobuild.binaries_dir()}{os.pathsep}"
                                                     f"{os.environ['PATH']}"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert '"token": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in output  # the arguments were shown
    for token in identity.tokens.values():
        assert token not in output


def test_upgrade_as_the_service_account_breaking_a_stale_lock(run_playbook, identity, fleet,
                                                              apis):
    """A run that died left its lock on cluster1, not renewed for over an hour (stale, not yet
    expired); the rerun names it and takes it over."""
    now = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=4000)
           ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    coordination = client.CoordinationV1Api(apis["cluster1"])
    # The install left the lock released (a Lease without holder): the dead run's replaces it.
    coordination.delete_namespaced_lease("meshfleet-run-lock", "kube-system")
    coordination.create_namespaced_lease("kube-system", {
        "metadata": {"name": "meshfleet-run-lock"},
        "spec": {"holderIdentity": "dead-run", "leaseDurationSeconds": 7200,
                 "acquireTime": now, "renewTime": now}})
    window = Window(fleet)
    run = run_as_identity(run_playbook, identity, "upgrade",
                          extra_vars=dict(UPGRADE, meshfleet_break_lock="dead-run"))
    assert run.rc == 0, run.output[-5000:]
    window.assert_made_by_the_identity()
    assert "taking over the run lock from dead-run" in run.output
    for name, api in apis.items():
        assert mesh_tags(api) == {"default": NEW, "prod-stable": NEW}, name
        assert pods_on(api, OLD) == ["bare"], name
        assert istiod_revisions(api) == [f"istiod-{OLD}", f"istiod-{NEW}"], name  # kept: in use


def test_rollback_as_the_service_account(run_playbook, identity, fleet, apis):
    window = Window(fleet)
    run = run_as_identity(run_playbook, identity, "rollback", limit="cluster3")
    assert run.rc == 0, run.output[-5000:]
    window.assert_made_by_the_identity(["cluster3"])
    assert mesh_tags(apis["cluster3"]) == {"default": OLD, "prod-stable": OLD}
    assert pods_on(apis["cluster3"], NEW) == []


def test_the_rerun_prunes_as_the_service_account(run_playbook, identity, fleet, apis):
    for api in apis.values():
        client.CoreV1Api(api).delete_namespaced_pod("bare", APP, grace_period_seconds=0)
    window = Window(fleet)
    run = run_as_identity(run_playbook, identity, "upgrade", extra_vars=UPGRADE)
    assert run.rc == 0, run.output[-5000:]
    window.assert_made_by_the_identity()
    for name, api in apis.items():
        assert istiod_revisions(api) == [f"istiod-{NEW}"], name
        assert pods_on(api, OLD) == [], name


def test_an_install_rerun_changes_the_releases_in_place(run_playbook, identity, fleet, apis):
    """A changed fleet spec: a new network name relabels the gateways' objects and changes
    istiod's configuration (helm upgrades both releases in place), the default Sidecar goes."""
    window = Window(fleet)
    run = run_as_identity(run_playbook, identity, "install", limit="cluster1", extra_vars={
        "meshfleet_istio_version": "1.31.0", "meshfleet_application_namespaces": [APP],
        "meshfleet_network": "net-moved"})
    assert run.rc == 0, run.output[-5000:]
    window.assert_made_by_the_identity(["cluster1"])
    api = apis["cluster1"]
    assert default_sidecar(api) == []
    for kind, name in (("hpa", "istio-ingressgateway"), ("pdb", "istio-ingressgateway"),
                       ("role", "istio-ingressgateway")):
        obj = {"hpa": client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler,
               "pdb": client.PolicyV1Api(api).read_namespaced_pod_disruption_budget,
               "role": client.RbacAuthorizationV1Api(api).read_namespaced_role}[kind](
                   f"{name}-{NEW}", "istio-gateways")
        assert obj.metadata.labels["topology.istio.io/network"] == "net-moved", kind
    injector = client.CoreV1Api(api).read_namespaced_config_map(
        f"istio-sidecar-injector-{NEW}", "istio-system")
    assert "net-moved" in injector.data["values"]


def test_uninstall_as_the_service_account(run_playbook, identity, fleet, apis):
    window = Window(fleet)
    run = run_as_identity(run_playbook, identity, "uninstall", extra_vars={
        "meshfleet_force": True, "meshfleet_remove_crds": True})
    assert run.rc == 0, run.output[-5000:]
    window.assert_made_by_the_identity()
    for name, api in apis.items():
        assert not any(namespace_exists(api, n) for n in LAYOUT), name
        assert istio_crds(api) == [], name


@pytest.mark.skipif(DERIVE, reason="the roles are being derived, not checked")
def test_the_committed_roles_are_what_the_runs_needed(identity, fleet):
    found = audit_requests.fleet_requests(fleet, identity.marks, IDENTITY)
    cluster_roles, roles = rbac.roles_of(rbac.load_manifests(RBAC_DIR))
    derived_cluster, derived_roles, _ = rbac.derive(found)
    regenerate = "rbac/ is out of date: regenerate it with hack/derive-rbac (docs/rbac.md)"
    # Every request the runs made is allowed by meshfleet's own roles (without the charts').
    assert [r for r in sorted(found)
            if not rbac.allowed(r, cluster_roles[rbac.ROLE], roles)] == [], regenerate
    # Every rule of meshfleet's own roles was used by these runs: the rules are exactly those
    # the requests imply.
    assert rbac.atoms_of(cluster_roles[rbac.ROLE]) == derived_cluster, regenerate
    assert {ns: rbac.atoms_of(rules) for ns, rules in roles.items()} == derived_roles, regenerate
    # The charts' ClusterRole holds exactly the permissions of the roles the charts create.
    charts_atoms = rbac.chart_atoms(rbac.chart_roles())
    assert rbac.atoms_of(cluster_roles[rbac.CHARTS_ROLE]) == charts_atoms, regenerate
    # And the files are what the tool writes for these requests.
    committed = {path.name: path.read_text() for path in sorted(RBAC_DIR.glob("*.yml"))}
    assert rbac.manifests(*rbac.derive(found), charts_atoms) == committed, regenerate
    # The only refusal was the narrowed role's.
    refused = {(c.spec.name, r.resource, r.verb, r.namespace)
               for c in fleet.clusters for r, _ in audit_requests.denied(c.audit_log,
                                                               identity.marks[c.spec.name],
                                                               IDENTITY)}
    assert refused <= {("cluster2", "namespaces", "patch", "istio-config")}


def test_no_run_printed_a_credential(identity):
    assert identity.outputs
    for output in identity.outputs:
        for token in identity.tokens.values():
            assert token not in output
        assert "client-key-data" not in output and "BEGIN RSA PRIVATE KEY" not in output
