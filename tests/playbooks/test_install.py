"""install.yml on a fleet of three empty clusters, then again, then check and diff mode, bad
input, the status report and uninstall.yml. The tests run in file order and build on each
other, as an operator's sessions would."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import ansible_collections.kubernetes.core as kubernetes_core
import pytest
from kubernetes import client

from localfleet import charts, gobuild, versions
from localfleet.pytest_plugin import api_client
from tests.playbooks import istioctl_judge

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

VERSION = versions.ISTIO_DEFAULT
REVISION = VERSION.replace(".", "-")
OVERRIDES = {
    "cluster2": {"meshfleet_istiod_cluster_values": {"autoscaleMax": 7},
                 "meshfleet_application_namespaces": ["storefront"]},
    "cluster3": {"meshfleet_trust_domain": "cluster3.example", "meshfleet_network": "east"},
}


@pytest.fixture(scope="module")
def apis(fleet):
    return {c.spec.name: api_client(fleet, c.spec.name) for c in fleet.clusters}


def namespace_exists(api, name):
    return any(ns.metadata.name == name for ns in client.CoreV1Api(api).list_namespace().items)


def test_the_fleet_starts_without_istio(apis):
    for name, api in apis.items():
        assert not namespace_exists(api, "istio-system"), f"{name} is not empty"


def test_check_mode_on_empty_clusters_predicts_and_writes_nothing(run_playbook, write_counter):
    counter = write_counter()
    run = run_playbook("install", check=True, host_vars=OVERRIDES)
    assert run.rc == 0, run.output
    assert all(changed > 0 for changed in run.changed().values()), run.recap()
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}


def test_install_builds_the_production_layout(run_playbook, apis, write_counter, fleet):
    counter = write_counter()
    run = run_playbook("install", host_vars=OVERRIDES)
    assert run.rc == 0, run.output
    assert run.failed_hosts() == []
    for name, api in apis.items():
        assert_layout(name, api)
    assert_enrolled_after_the_tag_serves(counter.writes()["cluster2"], apis["cluster2"])
    assert_istioctl_approves(fleet, apis)


def assert_istioctl_approves(fleet, apis):
    """The release's istioctl finds the tags meshfleet wrote, exactly one injector for every
    namespace that asks for injection (cluster2's storefront), nothing for `analyze -A` to warn
    about (the access-log Telemetry names its provider: no IST0157) and nothing that would stop
    an upgrade (`x precheck`)."""
    objections = []
    for name, api in apis.items():
        objections += istioctl_judge.verdict(
            fleet, name, api, {"default": REVISION, "prod-stable": REVISION}, REVISION)
        objections += [f"{name}: precheck {m}" for m in istioctl_judge.precheck(fleet, name)]
    assert objections == []
    hooks_of, _ = istioctl_judge.injectors(fleet, "cluster2")
    assert hooks_of == {"storefront": ["istio-revision-tag-prod-stable"]}


def test_the_release_template_renders_the_sidecar_the_fleet_injects(apis, fleet, tmp_path):
    """What the apiserver's injector gives a pod in an enrolled namespace (a server-side dry
    run in cluster2's storefront) has the containers, images and revision that the release's own
    injection template renders from the ConfigMaps meshfleet installed, and the proxy it renders
    dials the revision's istiod. istioctl warns about nothing in that mesh config (before 1.25's
    istiod allocated addresses itself, the guide's ISTIO_META_DNS_AUTO_ALLOCATE drew a warning)."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "judge-probe", "namespace": "storefront"},
           "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}}
    admitted = client.CoreV1Api(apis["cluster2"]).create_namespaced_pod(
        "storefront", pod, dry_run="All").to_dict()
    rendered, warnings = istioctl_judge.rendered_injection(
        fleet, "cluster2", apis["cluster2"], REVISION, pod, tmp_path)
    assert warnings == []

    def shape(spec, key):
        return [(c["name"], c["image"]) for c in spec.get(key) or []]
    assert shape(admitted["spec"], "containers") == shape(rendered["spec"], "containers")
    assert shape(admitted["spec"], "init_containers") == shape(rendered["spec"], "initContainers")
    # kube-api-access-* is the apiserver's service-account token volume, not the injector's
    assert {v["name"] for v in admitted["spec"]["volumes"]
            if not v["name"].startswith("kube-api-access-")} == {
        v["name"] for v in rendered["spec"]["volumes"]}
    assert ("istio-proxy", f"registry.istio.io/release/proxyv2:{VERSION}") in shape(
        rendered["spec"], "containers")
    assert rendered["metadata"]["annotations"]["istio.io/rev"] == REVISION
    assert admitted["metadata"]["annotations"]["istio.io/rev"] == REVISION
    proxy = next(c for c in rendered["spec"]["containers"] if c["name"] == "istio-proxy")
    proxy_config = json.loads(next(e["value"] for e in proxy["env"] if e["name"] == "PROXY_CONFIG"))
    assert proxy_config["discoveryAddress"] == f"istiod-{REVISION}.istio-system.svc:15012"
    assert proxy_config["proxyMetadata"] == {"ISTIO_META_DNS_CAPTURE": "true"}


def assert_enrolled_after_the_tag_serves(writes, api):
    """The application namespace gets its tag label only after the tag's webhook was created
    and istiod's release installed (helm --wait: its Deployment Ready), never before: a pod
    admitted in between would start without a sidecar."""
    def first(resource, name):  # writes read "verb resource namespace/name as user: code"
        return next(i for i, write in enumerate(writes)
                    if write.split(" ")[1] == resource and write.split(" ")[2].endswith(name))

    enrolled = first("namespaces", "storefront")
    assert first("mutatingwebhookconfigurations", "istio-revision-tag-prod-stable") < enrolled, writes
    assert first("deployments", f"istiod-{REVISION}") < enrolled, writes
    labels = client.CoreV1Api(api).read_namespace("storefront").metadata.labels
    assert labels["istio.io/rev"] == "prod-stable"


def assert_layout(name, api):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    for ns in ("istio-config", "istio-system", "istio-gateways"):
        labels = core.read_namespace(ns).metadata.labels or {}
        assert "istio-injection" not in labels and "istio.io/rev" not in labels, (name, ns)

    istiod = apps.read_namespaced_deployment(f"istiod-{REVISION}", "istio-system")
    assert istiod.status.ready_replicas == 2
    hpa = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
        f"istiod-{REVISION}", "istio-system")
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 7 if name == "cluster2" else 5)
    client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(f"istiod-{REVISION}",
                                                                  "istio-system")
    mesh = yaml_load(core.read_namespaced_config_map(f"istio-{REVISION}", "istio-system").data["mesh"])
    assert mesh["rootNamespace"] == "istio-config"
    assert mesh["trustDomain"] == ("cluster3.example" if name == "cluster3" else "cluster.local")
    assert mesh["accessLogEncoding"] == "JSON"
    assert mesh["outboundTrafficPolicy"]["mode"] == "ALLOW_ANY"

    assert_tags_and_validator(api)
    assert_gateways(name, api)
    peer = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "security.istio.io", "v1", "istio-config", "peerauthentications", "default")
    assert peer["spec"]["mtls"]["mode"] == "PERMISSIVE"


def yaml_load(text):
    import yaml
    return yaml.safe_load(text)


def assert_tags_and_validator(api):
    adm = client.AdmissionregistrationV1Api(api)
    for tag in ("default", "prod-stable"):
        mwc = adm.read_mutating_webhook_configuration(f"istio-revision-tag-{tag}")
        assert mwc.metadata.labels["istio.io/rev"] == REVISION
        assert {h.client_config.service.name for h in mwc.webhooks} == {f"istiod-{REVISION}"}
        svc = client.CoreV1Api(api).read_namespaced_service(f"istiod-revision-tag-{tag}",
                                                           "istio-system")
        assert svc.spec.selector == {"app": "istiod", "istio.io/rev": REVISION}
    validator = adm.read_validating_webhook_configuration("istiod-default-validator")
    assert validator.webhooks[0].client_config.service.name == f"istiod-{REVISION}"


def assert_gateways(name, api):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    for gateway, kind in (("istio-ingressgateway", "ingressgateway"),
                          ("istio-egressgateway", "egressgateway")):
        deployment = apps.read_namespaced_deployment(f"{gateway}-{REVISION}", "istio-gateways")
        assert deployment.status.ready_replicas == 2, (name, gateway)
        pods = core.list_namespaced_pod("istio-gateways",
                                        label_selector=f"istio={kind},istio.io/rev={REVISION}").items
        assert pods and all(p.metadata.annotations.get("istio.io/rev") == REVISION for p in pods)
        assert all(any(c.name == "istio-proxy" for c in p.spec.containers) for p in pods)
        stable = core.read_namespaced_service(gateway, "istio-gateways")
        assert stable.spec.type == "LoadBalancer"
        assert stable.spec.selector == {"istio": kind, "istio.io/rev": REVISION}
        assert "app.kubernetes.io/managed-by" not in (stable.metadata.annotations or {})
        assert (stable.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "meshfleet"


def test_a_second_run_changes_nothing_and_writes_nothing(run_playbook, write_counter, apis):
    """Each cluster ends its run after comparing itself with the record of the first run."""
    counter = write_counter()
    run = run_playbook("install", host_vars=OVERRIDES)
    assert run.rc == 0, run.output
    assert run.changed() == {"cluster1": 0, "cluster2": 0, "cluster3": 0}, run.output[-8000:]
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}
    for name in apis:
        assert re.search(rf"{name}: converged, as run \S+-install-{name}-", run.output), name
    assert "Install istiod as revision" not in run.output
    record = client.CoreV1Api(apis["cluster2"]).read_namespaced_config_map(
        "meshfleet-install", "kube-system").data
    fingerprint = json.loads(record["fingerprint"])
    assert "Namespace/storefront" in fingerprint
    assert "HelmReleaseRecords/istio-gateways" in fingerprint
    assert "Telemetry/istio-config/default" in fingerprint


def test_a_full_converge_on_request_changes_nothing_and_writes_nothing(run_playbook, write_counter):
    """meshfleet_skip_converged: false takes every cluster through every role again."""
    counter = write_counter()
    run = run_playbook("install", host_vars=OVERRIDES,
                       extra_vars={"meshfleet_skip_converged": False})
    assert run.rc == 0, run.output
    assert run.changed() == {"cluster1": 0, "cluster2": 0, "cluster3": 0}
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}
    assert "converged, as run" not in run.output
    assert "Install istiod as revision" in run.output
    assert "ok: [cluster3] => (item=istio-ingressgateway)" in run.output


def test_a_drifted_object_is_named_and_repaired(run_playbook, apis, write_counter):
    """The record says which object changed since the last converged run; that run's repair
    makes a new record, and the next run ends early again."""
    core = client.CoreV1Api(apis["cluster1"])
    core.patch_namespaced_service("istio-ingressgateway", "istio-gateways",
                                  {"metadata": {"labels": {"team": "edge"}},
                                   "spec": {"selector": {"istio.io/rev": "drifted"}}})
    run = run_playbook("install", host_vars=OVERRIDES, limit="cluster1")
    assert run.rc == 0, run.output[-3000:]
    assert re.search(r"cluster1: converging in full: Service/istio-gateways/istio-ingressgateway "
                     r"changed since run \S+-install-cluster1-", run.output), run.output[-3000:]
    service = core.read_namespaced_service("istio-ingressgateway", "istio-gateways")
    assert service.spec.selector["istio.io/rev"] == REVISION
    counter = write_counter()
    again = run_playbook("install", host_vars=OVERRIDES, limit="cluster1")
    assert again.rc == 0, again.output[-3000:]
    assert "cluster1: converged, as run" in again.output
    assert counter.writes()["cluster1"] == []


def test_the_built_collection_runs_from_an_installed_copy(fleet, tmp_path, write_counter):
    """ansible-galaxy collection build, install into an empty path, ansible-playbook
    meshfleet.istio.install from there: the fleet is already installed, so nothing changes."""
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "ansible-galaxy", "collection", "build", REPO, "--output-path",
                    tmp_path], check=True, capture_output=True)
    (tarball,) = tmp_path.glob("meshfleet-istio-*.tar.gz")
    collections = tmp_path / "collections"
    subprocess.run([bin_dir / "ansible-galaxy", "collection", "install", "--offline", "--no-deps",
                    "-p", collections, tarball], check=True, capture_output=True)
    site_packages = Path(list(kubernetes_core.__path__)[0]).parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=f"{collections}:{site_packages}",
               PATH=f"{gobuild.binaries_dir()}:{env['PATH']}", ANSIBLE_NOCOLOR="1")
    host_vars = tmp_path / "overrides"
    (host_vars / "host_vars").mkdir(parents=True)
    for host, values in OVERRIDES.items():
        (host_vars / "host_vars" / f"{host}.yml").write_text(json.dumps(values))
    (host_vars / "hosts.yml").write_text("all: {}\n")
    counter = write_counter()
    proc = subprocess.run([bin_dir / "ansible-playbook", "meshfleet.istio.install",
                           "-i", fleet.inventory, "-i", REPO / "inventories" / "localfleet",
                           "-i", host_vars], env=env, cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert str(collections) in subprocess.run(
        [bin_dir / "ansible-galaxy", "collection", "list", "meshfleet.istio"], env=env,
        capture_output=True, text=True, check=True).stdout
    assert "changed=0" in proc.stdout and "changed=1" not in proc.stdout
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}


def test_diff_mode_shows_the_real_changes_and_check_mode_writes_none(run_playbook, write_counter):
    counter = write_counter()
    run = run_playbook("install", check=True, diff=True, limit="cluster1",
                       extra_vars={"meshfleet_mtls_mode": "STRICT",
                                   "meshfleet_istiod_values": {"autoscaleMax": 9}})
    assert run.rc == 0, run.output
    assert "cluster1: converging in full: this run's inputs" in run.output
    assert '-            "mode": "PERMISSIVE"\n+            "mode": "STRICT"' in run.output
    assert "-  maxReplicas: 5\n+  maxReplicas: 9" in run.output
    assert counter.writes()["cluster1"] == []


@pytest.mark.parametrize("extra_vars,message", [
    ({"meshfleet_istio_version": "1.31.7"}, "newest known 1.31 release is 1.31.1"),
    ({"meshfleet_istio_version": "1.31"}, "not an Istio version"),
    ({"meshfleet_gateways": [{"name": "gw", "kind": "sideways"}]}, "meshfleet_gateways[0].kind is 'sideways'"),
    ({"meshfleet_application_namespaces": ["Shop"]},
     "meshfleet_application_namespaces[0] is 'Shop': namespace names must be DNS labels"),
    ({"meshfleet_stable_tag": REVISION}, f"meshfleet_stable_tag is '{REVISION}': it has the shape of a revision name"),
    ({"meshfleet_stable_tag": "Prod_Stable"}, "meshfleet_stable_tag is 'Prod_Stable': a revision tag must be a DNS label"),
    ({"meshfleet_context": "nowhere"}, "context"),
])
def test_bad_input_fails_before_any_write(run_playbook, write_counter, extra_vars, message):
    counter = write_counter()
    run = run_playbook("install", extra_vars=extra_vars)
    assert run.rc != 0
    assert message in run.output, run.output[-3000:]
    if "meshfleet_context" in extra_vars:
        # passes the input checks; every cluster fails when it reads its cluster
        assert sorted(run.failed_hosts()) == ["cluster1", "cluster2", "cluster3"]
    else:
        # refused by the input checks, which run once for all clusters and stop the run
        assert "nothing was changed on any cluster" in run.output
        assert run.failed_hosts() == ["cluster1"]
    assert counter.writes() == {"cluster1": [], "cluster2": [], "cluster3": []}


def test_one_bad_cluster_fails_alone(run_playbook, write_counter, fleet):
    counter = write_counter()
    broken = dict(OVERRIDES, cluster2=dict(OVERRIDES["cluster2"], meshfleet_kubeconfig="/nonexistent"))
    run = run_playbook("install", host_vars=broken)
    assert run.failed_hosts() == ["cluster2"]
    assert "cluster2: meshfleet_kubeconfig /nonexistent does not exist" in run.output
    assert run.changed()["cluster1"] == 0 and run.changed()["cluster3"] == 0
    assert counter.writes()["cluster2"] == []


def test_status_writes_the_fleet_report(run_playbook, tmp_path, fleet):
    run = run_playbook("status", extra_vars={"meshfleet_report_dir": str(tmp_path)})
    assert run.rc == 0, run.output
    report = json.loads((tmp_path / "fleet.json").read_text())
    assert sorted(report) == ["cluster1", "cluster2", "cluster3"]
    for name, mesh in report.items():
        assert mesh["tags"] == istioctl_judge.tags(fleet, name) == {
            "default": REVISION, "prod-stable": REVISION}
        _, injected_by = istioctl_judge.injectors(fleet, name)
        assert {ns["name"]: ns["revision"] for ns in mesh["namespaces"]} == {
            ns["name"]: injected_by[ns["name"]] for ns in mesh["namespaces"]}
        assert mesh["revisions"][REVISION]["ready"] is True
        assert {s["serving_revision"] for s in mesh["gateway_services"]} == {REVISION}
        assert mesh["problems"] == []
    table = (tmp_path / "fleet.md").read_text()
    assert f"| cluster2 | v1.35.4 | helm | {REVISION} (1.31.0, ready) |" in table


def test_status_fails_on_problems_when_asked(run_playbook, apis, tmp_path):
    """A tag left pointing at a revision that is not installed is a problem: status with
    meshfleet_fail_on_problems fails that cluster alone, naming it, after writing the report."""
    adm = client.AdmissionregistrationV1Api(apis["cluster3"])
    adm.create_mutating_webhook_configuration({"metadata": {
        "name": "istio-revision-tag-ghost", "labels": {"istio.io/tag": "ghost", "istio.io/rev": "9-9-9"}}})
    try:
        run = run_playbook("status", extra_vars={"meshfleet_report_dir": str(tmp_path),
                                                 "meshfleet_fail_on_problems": True})
        assert run.failed_hosts() == ["cluster3"], run.output[-3000:]
        assert "cluster3: 1 problem(s): tag ghost points at revision 9-9-9, which is not installed" in run.output
        report = json.loads((tmp_path / "fleet.json").read_text())
        assert report["cluster3"]["problems"] and not report["cluster1"]["problems"]
        quiet = run_playbook("status", extra_vars={"meshfleet_report_dir": str(tmp_path)})
        assert quiet.rc == 0, quiet.output[-3000:]
    finally:
        adm.delete_mutating_webhook_configuration("istio-revision-tag-ghost")


def status_problems(run_playbook, report_dir):
    run = run_playbook("status", extra_vars={"meshfleet_report_dir": str(report_dir)})
    assert run.rc == 0, run.output[-3000:]
    report = json.loads((report_dir / "fleet.json").read_text())
    return {cluster: mesh["problems"] for cluster, mesh in report.items()}


def test_status_finds_broken_injection_and_gateways_and_install_repairs_the_tag(
        run_playbook, apis, tmp_path):
    """A deleted default tag under an istio-injection=enabled namespace (cluster2), a pod that
    runs without a sidecar where injection is asked (cluster1) and a stable Service selecting no
    Ready pod (cluster3) are problems in the report; install.yml creates the default tag again
    and points the Service, which selects a revision that is not installed, back."""
    core1, core3 = client.CoreV1Api(apis["cluster1"]), client.CoreV1Api(apis["cluster3"])
    core1.create_namespace({"metadata": {"name": "legacy"}})
    core1.create_namespaced_pod("legacy", {"metadata": {"name": "bare"}, "spec": {
        "containers": [{"name": "app", "image": "example.invalid/app:1"}]}})
    core1.patch_namespace("legacy", {"metadata": {"labels": {"istio-injection": "enabled"}}})
    adm2 = client.AdmissionregistrationV1Api(apis["cluster2"])
    client.CoreV1Api(apis["cluster2"]).patch_namespace(
        "storefront", {"metadata": {"labels": {"istio-injection": "enabled", "istio.io/rev": None}}})
    adm2.delete_mutating_webhook_configuration("istio-revision-tag-default")
    selector = core3.read_namespaced_service("istio-ingressgateway", "istio-gateways").spec.selector
    core3.patch_namespaced_service("istio-ingressgateway", "istio-gateways",
                                   {"spec": {"selector": {"istio.io/rev": "0-0-0"}}})
    try:
        problems = status_problems(run_playbook, tmp_path)
        assert problems["cluster1"] == [
            "namespace legacy asks for injection but 1 pod(s) run without a sidecar (bare): "
            "restart their workloads to inject them"]
        assert problems["cluster2"] == [
            "namespace storefront asks for injection (istio-injection=enabled) but no injection "
            "webhook selects it: its new pods start without a sidecar; the default tag is "
            "missing: run install.yml to create it again"]
        assert problems["cluster3"] == [
            "stable gateway Service istio-gateways/istio-ingressgateway selects no Ready pod "
            "(selector istio=ingressgateway,istio.io/rev=0-0-0): traffic to it has nowhere to go"]
        repaired = run_playbook("install", host_vars=OVERRIDES, limit="cluster2,cluster3")
        assert repaired.rc == 0, repaired.output[-3000:]
        adm2.read_mutating_webhook_configuration("istio-revision-tag-default")
        assert core3.read_namespaced_service("istio-ingressgateway", "istio-gateways").spec.selector \
            == selector
        labels = client.CoreV1Api(apis["cluster2"]).read_namespace("storefront").metadata.labels
        assert labels.get("istio.io/rev") == "prod-stable" and "istio-injection" not in labels
        assert status_problems(run_playbook, tmp_path)["cluster2"] == []
    finally:
        core3.patch_namespaced_service("istio-ingressgateway", "istio-gateways",
                                       {"spec": {"selector": selector}})
        core1.delete_namespace("legacy")
        wait_until_gone(core1, "legacy")


def helm(fleet, context, *args):
    command = [str(gobuild.binaries_dir() / "helm"), *args, "--kubeconfig", str(fleet.kubeconfig),
               "--kube-context", context]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def test_status_names_a_helm_release_changed_by_hand_and_install_puts_it_back(
        run_playbook, fleet, tmp_path):
    """`helm upgrade --reuse-values --set` on a gateway release after meshfleet deployed it is
    a problem naming the value; install.yml deploys meshfleet's values again."""
    release = ["istio-ingressgateway-%s" % REVISION, "-n", "istio-gateways"]
    chart = charts.chart_dir(VERSION) / ("gateway-%s.tgz" % VERSION)
    helm(fleet, "cluster1", "upgrade", release[0], str(chart), *release[1:], "--reuse-values",
         "--set", "replicaCount=5")
    problems = status_problems(run_playbook, tmp_path)["cluster1"]
    assert len(problems) == 1, problems
    assert problems[0].startswith("Helm release istio-gateways/%s was changed outside meshfleet: "
                                  "revision " % release[0]), problems
    assert "changed replicaCount; install.yml puts meshfleet's values back" in problems[0]

    repaired = run_playbook("install", host_vars=OVERRIDES, limit="cluster1")
    assert repaired.rc == 0, repaired.output[-3000:]
    assert "replicaCount" not in json.loads(helm(fleet, "cluster1", "get", "values", *release,
                                                 "-o", "json"))
    history = json.loads(helm(fleet, "cluster1", "history", *release, "-o", "json"))
    assert history[-1]["description"] == "meshfleet: values differ"
    assert status_problems(run_playbook, tmp_path)["cluster1"] == []


def test_install_points_a_validator_at_a_missing_service_back(run_playbook, apis):
    adm = client.AdmissionregistrationV1Api(apis["cluster1"])
    adm.patch_validating_webhook_configuration("istiod-default-validator", [
        {"op": "replace", "path": "/webhooks/0/clientConfig/service/name", "value": "istiod-0-0-0"}])
    run = run_playbook("install", host_vars=OVERRIDES, limit="cluster1")
    assert run.rc == 0, run.output[-3000:]
    assert run.changed()["cluster1"] > 0
    validator = adm.read_validating_webhook_configuration("istiod-default-validator")
    assert validator.webhooks[0].client_config.service.name == f"istiod-{REVISION}"


def test_install_refuses_with_every_conflict_at_once_and_writes_nothing(run_playbook, apis,
                                                                        write_counter):
    """A stable tag pointing at a revision that is not installed and a legacy injector
    overlapping the default tag: one refusal names both, before any write."""
    adm = client.AdmissionregistrationV1Api(apis["cluster3"])
    legacy = adm.read_mutating_webhook_configuration("istio-revision-tag-default")
    adm.create_mutating_webhook_configuration({
        "metadata": {"name": "istio-sidecar-injector"},
        "webhooks": [client.ApiClient().sanitize_for_serialization(h) for h in legacy.webhooks]})
    adm.create_mutating_webhook_configuration({"metadata": {
        "name": "istio-revision-tag-ghost", "labels": {"istio.io/tag": "ghost", "istio.io/rev": "9-9-9"}}})
    counter = write_counter()
    try:
        run = run_playbook("install", host_vars=OVERRIDES, limit="cluster3",
                           extra_vars={"meshfleet_stable_tag": "ghost"})
        assert run.rc != 0
        refusal = re.search(r"cluster3: (\d+) conflict\(s\) stop this install: (.*)", run.output)
        assert refusal, run.output[-3000:]
        # the legacy copy overlaps on each of the default tag's four claims, then the tag
        assert int(refusal[1]) == 5, refusal[0]
        assert ("injection webhooks overlap on namespace istio-injection=enabled: "
                "istio-revision-tag-default, istio-sidecar-injector; remove or neutralise all but "
                "one") in refusal[2]
        assert ("tag ghost points at revision 9-9-9, which is not installed: move it to an "
                "installed revision") in refusal[2]
        assert counter.writes()["cluster3"] == []
    finally:
        adm.delete_mutating_webhook_configuration("istio-sidecar-injector")
        adm.delete_mutating_webhook_configuration("istio-revision-tag-ghost")


def test_uninstall_refuses_while_workloads_have_sidecars(run_playbook, apis):
    core, apps = client.CoreV1Api(apis["cluster1"]), client.AppsV1Api(apis["cluster1"])
    core.create_namespace({"metadata": {"name": "shop", "labels": {"istio.io/rev": "prod-stable"}}})
    apps.create_namespaced_deployment("shop", {
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]}}}})
    wait_for_injected_pod(core)
    run = run_playbook("uninstall", limit="cluster1")
    assert run.rc != 0
    assert "pods with sidecars still run in namespace(s) shop" in run.output
    core.delete_namespace("shop")
    wait_until_gone(core, "shop")


def wait_until_gone(core, namespace):
    import time
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not namespace_exists(core.api_client, namespace):
            return
        time.sleep(0.5)
    raise AssertionError(f"namespace {namespace} still exists")


def wait_for_injected_pod(core):
    import time
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod("shop").items
        if pods and (pods[0].metadata.annotations or {}).get("istio.io/rev") == REVISION:
            return
        time.sleep(0.5)
    raise AssertionError("no injected pod in namespace shop")


def test_uninstall_removes_everything_but_the_crds(run_playbook, apis):
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True})
    assert run.rc == 0, run.output
    for name, api in apis.items():
        adm = client.AdmissionregistrationV1Api(api)
        istio_hooks = [m.metadata.name for m in adm.list_mutating_webhook_configuration().items
                       if "istio" in m.metadata.name]
        istio_validators = [v.metadata.name for v in adm.list_validating_webhook_configuration().items
                            if "istio" in v.metadata.name]
        assert istio_hooks == [] and istio_validators == [], name
        assert not namespace_exists(api, "istio-gateways")
        assert "meshfleet-install" not in [
            c.metadata.name for c in client.CoreV1Api(api).list_namespaced_config_map("kube-system").items]
        crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
        assert any(c.metadata.name == "peerauthentications.security.istio.io" for c in crds)
    storefront = client.CoreV1Api(apis["cluster2"]).read_namespace("storefront")
    assert "istio.io/rev" not in (storefront.metadata.labels or {})
    client.CoreV1Api(apis["cluster2"]).delete_namespace("storefront")
    wait_until_gone(client.CoreV1Api(apis["cluster2"]), "storefront")
