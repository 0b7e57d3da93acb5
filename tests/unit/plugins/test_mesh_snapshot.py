"""The mesh model and the in-use rule, on plain objects as the API returns them."""

import datetime

from ansible_collections.meshfleet.istio.plugins.module_utils import revision_tags, run_lock
from ansible_collections.meshfleet.istio.plugins.module_utils.upgrade_record import record_body
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import MeshSnapshot


def istiod(revision, version, ready=2):
    return {"metadata": {"name": f"istiod-{revision}", "namespace": "istio-system",
                         "labels": {"app": "istiod", "istio.io/rev": revision,
                                    "app.kubernetes.io/version": version,
                                    "app.kubernetes.io/managed-by": "Helm"}},
            "spec": {"replicas": 2}, "status": {"readyReplicas": ready}}


def namespace(name, **labels):
    return {"metadata": {"name": name, "labels": labels}}


def pod(ns, name, revision=None, phase="Running", label=None):
    meta = {"name": name, "namespace": ns, "annotations": {}, "labels": {}}
    if revision:
        meta["annotations"]["istio.io/rev"] = revision
    if label:
        meta["labels"]["istio.io/rev"] = label
    return {"metadata": meta, "status": {"phase": phase}}


def service(name):
    return {"metadata": {"name": name, "namespace": "istio-system"}}


def snapshot(**overrides):
    raw = {"kubernetes_version": "v1.35.4", "istio_namespace": "istio-system",
           "namespaces": [], "pods": [],
           "deployments": [istiod("1-30-dev", "1.30-dev"), istiod("1-31-0", "1.31.0")],
           "services": [service("istiod-1-30-dev"), service("istiod-1-31-0")],
           "mutating_webhooks": [revision_tags.tag_webhook_configuration("default", "1-31-0"),
                                 revision_tags.tag_webhook_configuration("prod-stable", "1-30-dev")],
           "validating_webhooks": [revision_tags.default_validator_target("1-31-0")]}
    raw.update(overrides)
    return MeshSnapshot(raw)


def test_namespaces_resolve_tags_and_injection_enabled_to_revisions():
    snap = snapshot(namespaces=[namespace("a", **{"istio.io/rev": "prod-stable"}),
                                namespace("b", **{"istio-injection": "enabled"}),
                                namespace("c", **{"istio.io/rev": "1-31-0", "istio-injection": "disabled"}),
                                namespace("d")])
    assert {n["name"]: n["revision"] for n in snap.namespaces()} == {
        "a": "1-30-dev", "b": "1-31-0", "c": None, "d": None}


def test_pods_count_under_the_revision_that_injected_them_not_their_label():
    snap = snapshot(pods=[pod("a", "p1", "1-30-dev", label="prod-stable"),
                          pod("a", "p2", "1-31-0", label="prod-stable"),
                          pod("a", "job", "1-30-dev", phase="Succeeded"),
                          pod("a", "plain")])
    assert snap.pods_by_revision() == {"1-30-dev": 1, "1-31-0": 1}
    assert snap.pods_by_namespace() == {"a": {"1-30-dev": 1, "1-31-0": 1}}


def test_a_revision_is_in_use_for_each_reason_of_the_rule():
    snap = snapshot(namespaces=[namespace("a", **{"istio.io/rev": "prod-stable"})],
                    pods=[pod("b", "failed", "1-30-dev", phase="Failed"),
                          pod("c", "done", "1-30-dev", phase="Succeeded")])
    assert snap.uses_of("1-30-dev") == ["tag prod-stable", "namespace a", "pod b/failed"]
    assert snap.uses_of("1-31-0") == ["tag default", "validator istiod-default-validator"]


def test_an_unused_revision_has_no_uses():
    snap = snapshot(mutating_webhooks=[revision_tags.tag_webhook_configuration("default", "1-31-0")])
    assert snap.uses_of("1-30-dev") == []


def test_a_validator_pointing_at_a_missing_service_is_a_problem():
    snap = snapshot(services=[service("istiod-1-30-dev")])
    assert snap.validator()["target_exists"] is False
    assert any("istiod-default-validator points at Service istiod-1-31-0" in p for p in snap.problems())
    assert snap.orphaned_webhooks() == [{"configuration": "istio-revision-tag-default",
                                         "service": "istiod-1-31-0"}]


def test_overlapping_injection_webhooks_are_found_and_a_neutralised_one_is_not():
    legacy = revision_tags.tag_webhook_configuration("default", "1-30-dev")
    legacy["metadata"]["name"] = "istio-sidecar-injector"
    hooks = [revision_tags.tag_webhook_configuration("default", "1-31-0"), legacy]
    overlaps = snapshot(mutating_webhooks=hooks).overlapping_webhooks()
    assert {"claim": "namespace istio-injection=enabled",
            "configurations": ["istio-revision-tag-default", "istio-sidecar-injector"]} in overlaps
    hooks[1] = revision_tags.neutralised_legacy_injector(legacy)
    assert snapshot(mutating_webhooks=hooks).overlapping_webhooks() == []


def test_engine_and_readiness_come_from_the_istiod_deployments():
    snap = snapshot(deployments=[istiod("1-31-0", "1.31.0", ready=0)])
    assert snap.revisions["1-31-0"]["ready"] is False
    assert snap.engine() == "helm"


def istioctl_istiod():
    """What `istioctl install` 1.31.0 leaves: Helm's managed-by label, the embedded charts'
    version 1.0.0, and the labels only istioctl (and the operator) write."""
    deployment = istiod("default", "1.0.0")
    deployment["metadata"]["name"] = "istiod"
    del deployment["metadata"]["labels"]["istio.io/rev"]
    deployment["metadata"]["labels"].update({
        "install.operator.istio.io/owning-resource": "unknown",
        "operator.istio.io/managed": "Reconcile", "operator.istio.io/version": "1.31.0"})
    return deployment


def test_an_istioctl_install_is_told_from_helm_with_its_real_version_and_reported():
    snap = snapshot(deployments=[istioctl_istiod()])
    assert snap.revisions["default"]["engine"] == "istioctl"
    assert snap.revisions["default"]["version"] == "1.31.0"
    assert ("istiod default (Deployment istiod, Istio 1.31.0) was installed by istioctl, not "
            "Helm: meshfleet does not manage it; upgrade.yml takes it over") in snap.problems()


def test_an_istiod_of_meshfleets_own_istiooperator_is_told_from_a_hand_written_ones():
    def operated(owner):
        deployment = istiod("1-22-8", "1.22.8")
        deployment["metadata"]["labels"].update({
            "install.operator.istio.io/owning-resource": owner,
            "install.operator.istio.io/owning-resource-namespace": "istio-system"})
        return deployment

    iops = [{"metadata": {"name": "istiod-1-22-8", "namespace": "istio-system",
                          "labels": {"app.kubernetes.io/managed-by": "meshfleet"}}},
            {"metadata": {"name": "by-hand", "namespace": "istio-system"}}]
    own = snapshot(deployments=[operated("istiod-1-22-8")], istio_operators=iops)
    assert own.revisions["1-22-8"]["istio_operator"] == "istiod-1-22-8"
    assert own.revisions["1-22-8"]["meshfleet_operator"] is True
    assert not any("IstioOperator" in problem for problem in own.problems())
    hand = snapshot(deployments=[operated("by-hand")], istio_operators=iops)
    assert hand.revisions["1-22-8"]["meshfleet_operator"] is False
    gone = snapshot(deployments=[operated("istiod-1-22-8")])  # no IstioOperator CRD read
    assert gone.revisions["1-22-8"]["meshfleet_operator"] is False
    assert "istio_operator" not in snapshot().revisions["1-31-0"]


def test_an_operator_owned_istiod_is_the_operators():
    deployment = istioctl_istiod()
    deployment["metadata"]["labels"]["install.operator.istio.io/owning-resource"] = "control-plane"
    snap = snapshot(deployments=[deployment])
    assert snap.revisions["default"]["engine"] == "operator"
    assert any("managed by an IstioOperator" in p for p in snap.problems())


def test_meshfleets_helm_istiod_is_no_unmanaged_control_plane():
    deployment = istiod("1-31-0", "1.31.0")
    deployment["metadata"]["labels"]["install.operator.istio.io/owning-resource"] = "unknown"
    snap = snapshot(deployments=[deployment])
    assert snap.revisions["1-31-0"]["engine"] == "helm"
    assert snap.unmanaged_control_planes() == []


def test_a_non_revisioned_helm_istiod_is_reported_as_one_the_upgrade_takes_over():
    deployment = istiod("default", "1.30.3")
    deployment["metadata"]["name"] = "istiod"
    del deployment["metadata"]["labels"]["istio.io/rev"]
    snap = snapshot(deployments=[deployment])
    assert snap.revisions["default"]["engine"] == "helm"
    assert snap.unmanaged_control_planes() == [
        "istiod default (Deployment istiod, Istio 1.30.3) is a non-revisioned Helm release "
        "meshfleet did not install: meshfleet does not manage it; upgrade.yml takes it over"]


# ------------------------------------------------------------------ runs

def run_lock_lease(holder, seconds_ago):
    moment = run_lock.now() - datetime.timedelta(seconds=seconds_ago)
    return run_lock.lease_body(holder, 120, "41", moment=moment)


def record(phase):
    return {"data": {"revision": "1-31-0", "phase": phase, "run_id": "run-a",
                     "updated": "2026-11-29T12:00:00Z"}}


def test_a_cluster_never_locked_or_upgraded_has_no_run_problem():
    facts = snapshot().facts()
    assert facts["lock"]["state"] == "absent" and facts["upgrade_record"] == {}
    assert facts["problems"] == []


def test_a_live_upgrade_in_progress_is_no_problem():
    facts = snapshot(run_lock=run_lock_lease("run-a", 5),
                     upgrade_record=record("started")).facts()
    assert facts["lock"]["state"] == "live" and facts["lock"]["holder"] == "run-a"
    assert "run-a, live (renewed 5s ago" in facts["lock"]["summary"]
    assert facts["problems"] == []


def test_a_dead_runs_lock_and_its_half_done_upgrade_are_problems_with_the_way_out():
    facts = snapshot(run_lock=run_lock_lease("run-a", 90),
                     upgrade_record=record("started")).facts()
    assert facts["lock"]["state"] == "stale"
    lock_problem, upgrade_problem = facts["problems"]
    assert "run lock left by run-a: stale" in lock_problem
    assert "meshfleet_break_lock=run-a" in lock_problem
    assert "upgrade to 1-31-0 by run run-a stopped" in upgrade_problem
    assert "upgrade.yml again" in upgrade_problem and "rollback.yml" in upgrade_problem


def test_a_failed_upgrade_is_a_problem_until_finished_or_rolled_back():
    assert "failed" in snapshot(upgrade_record=record("failed")).facts()["problems"][0]
    for phase in ("passed", "rolled-back"):
        assert snapshot(upgrade_record=record(phase)).facts()["problems"] == []


def test_the_facts_carry_the_upgrade_record_with_its_history():
    assert snapshot().facts()["upgrade_record"] == {}
    assert snapshot(upgrade_record=None).facts()["upgrade_record"] == {}
    record = record_body("1-31-0", "passed", "run-2", record_body("1-31-0", "started", "run-2"))
    facts = snapshot(upgrade_record=record).facts()["upgrade_record"]
    assert (facts["revision"], facts["phase"], facts["run_id"]) == ("1-31-0", "passed", "run-2")
    assert [h["phase"] for h in facts["history"]] == ["started", "passed"]


def ready_pod(ns, name, labels, ready=True):
    return {"metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": {}},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": str(ready)}]}}


def stable_service(selector):
    return {"metadata": {"name": "istio-ingressgateway", "namespace": "istio-gateways",
                         "labels": {"meshfleet.io/stable-gateway": "true"}},
            "spec": {"selector": selector}}


def test_a_namespace_asking_for_a_missing_default_tag_is_a_problem_with_the_way_out():
    snap = snapshot(namespaces=[namespace("shop", **{"istio-injection": "enabled"})],
                    mutating_webhooks=[revision_tags.tag_webhook_configuration("prod-stable", "1-30-dev")])
    assert snap.injection_problems() == [
        "namespace shop asks for injection (istio-injection=enabled) but no injection webhook "
        "selects it: its new pods start without a sidecar; the default tag is missing: run "
        "install.yml to create it again"]


def test_a_namespace_whose_injector_has_no_ready_istiod_is_a_problem():
    snap = snapshot(namespaces=[namespace("shop", **{"istio.io/rev": "prod-stable"})],
                    deployments=[istiod("1-30-dev", "1.30-dev", ready=0), istiod("1-31-0", "1.31.0")])
    assert snap.injection_problems() == [
        "namespace shop asks for injection (istio.io/rev=prod-stable) through "
        "istio-revision-tag-prod-stable, whose revision 1-30-dev has no Ready istiod: pods "
        "created there fail or start without a sidecar"]


def test_a_namespace_with_two_injectors_is_a_problem():
    second = revision_tags.tag_webhook_configuration("prod-stable", "1-31-0")
    second["metadata"]["name"] = "hand-made-injector"
    snap = snapshot(namespaces=[namespace("shop", **{"istio.io/rev": "prod-stable"})],
                    mutating_webhooks=snapshot().raw["mutating_webhooks"] + [second])
    (problem,) = snap.injection_problems()
    assert "2 webhook configurations select it (hand-made-injector, istio-revision-tag-prod-stable)" in problem


def test_pods_without_sidecar_where_injection_is_asked_are_a_problem():
    snap = snapshot(namespaces=[namespace("shop", **{"istio.io/rev": "prod-stable"}),
                                namespace("plain")],
                    pods=[pod("shop", "web-1"), pod("shop", "web-2", "1-30-dev"), pod("plain", "x")])
    assert snap.injection_problems() == [
        "namespace shop asks for injection but 1 pod(s) run without a sidecar (web-1): restart "
        "their workloads to inject them"]


def test_a_healthy_mesh_has_no_injection_problem():
    snap = snapshot(namespaces=[namespace("shop", **{"istio.io/rev": "prod-stable"}),
                                namespace("legacy", **{"istio-injection": "enabled"})],
                    pods=[pod("shop", "web-1", "1-30-dev"), pod("legacy", "old", "1-31-0")])
    assert snap.injection_problems() == []


def test_a_stable_gateway_service_without_ready_pods_is_a_problem():
    selector = {"istio": "ingressgateway", "istio.io/rev": "1-31-0"}
    labels = dict(selector, app="istio-ingressgateway")
    healthy = snapshot(services=snapshot().raw["services"] + [stable_service(selector)],
                       pods=[ready_pod("istio-gateways", "gw-1", labels)])
    assert healthy.gateway_service_problems() == []
    not_ready = snapshot(services=snapshot().raw["services"] + [stable_service(selector)],
                         pods=[ready_pod("istio-gateways", "gw-1", labels, ready=False),
                               ready_pod("elsewhere", "gw-2", labels)])
    assert not_ready.gateway_service_problems() == [
        "stable gateway Service istio-gateways/istio-ingressgateway selects no Ready pod "
        "(selector istio=ingressgateway,istio.io/rev=1-31-0): traffic to it has nowhere to go"]


def test_a_hand_made_service_selecting_gateway_pods_is_read_with_the_revision_it_serves():
    from tests.unit.plugins.test_revision_usage import hand_made_layout
    raw = hand_made_layout()["mesh"]
    raw["services"] += [{"metadata": {"name": "istio-ingressgateway-lb", "namespace": "istio-gateways"},
                         "spec": {"type": "ClusterIP",
                                  "selector": {"istio": "ingressgateway", "version": "1-30-dev"},
                                  "ports": [{"name": "http2", "port": 80, "targetPort": 8080,
                                             "protocol": "TCP", "nodePort": 31000}]}},
                        {"metadata": {"name": "unrelated", "namespace": "istio-gateways"},
                         "spec": {"selector": {"app": "other"}}}]
    snap = MeshSnapshot(raw)
    assert [g["revision"] for g in snap.gateways()] == ["1-30-dev", "1-31-0"]
    assert snap.hand_made_gateway_services() == [{
        "name": "istio-ingressgateway-lb", "namespace": "istio-gateways", "type": "ClusterIP",
        "ports": [{"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP",
                   "nodePort": 31000}],
        "selector": {"istio": "ingressgateway", "version": "1-30-dev"}, "kind": "ingressgateway",
        "serving_revision": "1-30-dev", "ready_pods": 0}]


def test_tags_a_helm_release_renders_are_listed_with_the_release():
    rendered = revision_tags.tag_webhook_configuration("prod-stable", "1-30-dev")
    rendered["metadata"]["annotations"] = {"meta.helm.sh/release-name": "istiod-1-30-dev",
                                           "meta.helm.sh/release-namespace": "istio-system"}
    kept = revision_tags.tag_service("prod-stable", "1-30-dev")
    kept["metadata"]["annotations"] = dict(rendered["metadata"]["annotations"],
                                           **{"helm.sh/resource-policy": "keep"})
    snap = snapshot(mutating_webhooks=[rendered, revision_tags.tag_webhook_configuration(
        "default", "1-31-0")], services=[kept])
    assert snap.helm_tag_objects() == [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "name": "istio-revision-tag-prod-stable", "tag": "prod-stable",
         "release": "istiod-1-30-dev", "kept": False},
        {"apiVersion": "v1", "kind": "Service", "name": kept["metadata"]["name"],
         "namespace": "istio-system", "tag": "prod-stable", "release": "istiod-1-30-dev",
         "kept": True}]


def test_a_tag_a_helm_release_rendered_is_written_with_helms_keep_annotation():
    rendered = revision_tags.tag_webhook_configuration("prod-stable", "1-30-dev")
    rendered["metadata"]["annotations"] = {"meta.helm.sh/release-name": "istiod-1-30-dev"}
    snap = snapshot(mutating_webhooks=[rendered])
    objects = revision_tags.kept_from_helm(snap, revision_tags.tag_objects("prod-stable", "1-31-0"))
    assert [(o["kind"], (o["metadata"].get("annotations") or {}).get("helm.sh/resource-policy"))
            for o in objects] == [("MutatingWebhookConfiguration", "keep"), ("Service", None)]
