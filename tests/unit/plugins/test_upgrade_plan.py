import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import revision_tags
from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import VersionError
from ansible_collections.meshfleet.istio.plugins.module_utils.upgrade_plan import PlanError, plan
from tests.unit.plugins.test_mesh_snapshot import istiod, namespace, pod, service, snapshot


def tags(**pointing):
    return [revision_tags.tag_webhook_configuration(t.replace("_", "-"), r)
            for t, r in pointing.items()]


def gateway(revision, ready=2):
    return {"metadata": {"name": f"istio-ingressgateway-{revision}", "namespace": "istio-gateways",
                         "labels": {"istio": "ingressgateway", "istio.io/rev": revision}},
            "spec": {"replicas": 2}, "status": {"readyReplicas": ready}}


def stable(revision):
    return {"metadata": {"name": "istio-ingressgateway", "namespace": "istio-gateways",
                         "labels": {"meshfleet.io/stable-gateway": "istio-ingressgateway"}},
            "spec": {"type": "LoadBalancer",
                     "selector": {"istio": "ingressgateway", "istio.io/rev": revision}}}


def owned(p, kind):
    p["metadata"]["ownerReferences"] = [{"kind": kind, "name": "x"}]
    return p


def old_cluster(**overrides):
    base = dict(deployments=[istiod("1-30-dev", "1.30-dev"), gateway("1-30-dev")],
                services=[service("istiod-1-30-dev"), stable("1-30-dev")],
                mutating_webhooks=tags(default="1-30-dev", prod_stable="1-30-dev"),
                pods=[owned(pod("shop", "web-1", "1-30-dev"), "ReplicaSet")])
    base.update(overrides)
    return snapshot(**base)


def states(result):
    return {s["name"]: s["state"] for s in result["steps"]}


def test_an_old_cluster_has_every_step_pending():
    result = plan(old_cluster(), "1.31.0")
    assert (result["current_revision"], result["target_revision"]) == ("1-30-dev", "1-31-0")
    assert result["minor_jump"] == 1
    assert result["pending"] == ["install_revision", "install_gateways", "canary_tag", "promote",
                                 "migrate_workloads", "cutover_gateways", "prune"]


def test_a_cluster_at_the_target_plans_nothing():
    done = snapshot(deployments=[istiod("1-31-0", "1.31.0"), gateway("1-31-0")],
                    services=[service("istiod-1-31-0"), stable("1-31-0")],
                    mutating_webhooks=tags(default="1-31-0", prod_stable="1-31-0"),
                    pods=[owned(pod("shop", "web-1", "1-31-0"), "ReplicaSet")])
    assert plan(done, "1.31.0")["pending"] == []


def test_a_half_done_upgrade_resumes_where_the_cluster_is():
    half = old_cluster(deployments=[istiod("1-30-dev", "1.30-dev"), istiod("1-31-0", "1.31.0"),
                                    gateway("1-30-dev"), gateway("1-31-0")],
                       mutating_webhooks=tags(default="1-31-0", prod_stable="1-31-0"))
    assert plan(half, "1.31.0")["pending"] == ["migrate_workloads", "cutover_gateways", "prune"]


def test_pods_no_rollout_can_move_need_a_hand_instead_of_blocking():
    stuck = old_cluster(deployments=[istiod("1-30-dev", "1.30-dev"), istiod("1-31-0", "1.31.0"),
                                     gateway("1-31-0")],
                        mutating_webhooks=tags(default="1-31-0", prod_stable="1-31-0"),
                        services=[service("istiod-1-30-dev"), stable("1-31-0")],
                        pods=[pod("shop", "bare", "1-30-dev")])
    result = plan(stuck, "1.31.0")
    assert result["pending"] == []
    assert states(result)["prune"] == "needs_a_hand"
    assert "shop/bare (Pod)" in result["needs_a_hand"][0]


@pytest.mark.parametrize("target,message", [
    ("1.30.1", "downgrade"),
    ("1.31.9", "not in meshfleet's version catalogue"),
])
def test_bad_targets_are_refused(target, message):
    cluster = old_cluster(deployments=[istiod("1-31-0", "1.31.0")],
                          mutating_webhooks=tags(default="1-31-0", prod_stable="1-31-0"))
    with pytest.raises(Exception, match=message):
        plan(cluster, target)


def test_a_jump_over_the_policy_is_refused():
    cluster = old_cluster(deployments=[istiod("1-29-8", "1.29.8")],
                          mutating_webhooks=tags(default="1-29-8", prod_stable="1-29-8"))
    with pytest.raises(VersionError, match="jumps 2 minors"):
        plan(cluster, "1.31.0")
    assert plan(cluster, "1.31.0", max_minors=2)["minor_jump"] == 2


def test_kubernetes_outside_the_target_range_is_refused():
    cluster = old_cluster(kubernetes_version="v1.31.2")
    with pytest.raises(Exception, match="Kubernetes 1.31 is outside the range Istio 1.31.0"):
        plan(cluster, "1.31.0")


def test_a_data_plane_ahead_of_the_target_is_refused():
    cluster = old_cluster(deployments=[istiod("1-30-dev", "1.30-dev"), istiod("1-31-1", "1.31.1")],
                          pods=[owned(pod("shop", "web-1", "1-31-1"), "ReplicaSet")])
    with pytest.raises(PlanError, match="data plane would end up ahead"):
        plan(cluster, "1.31.0")


def test_no_istio_means_install_first():
    with pytest.raises(PlanError, match="install"):
        plan(snapshot(deployments=[], mutating_webhooks=[]), "1.31.0")


def test_a_bare_pod_labelled_with_the_old_revision_needs_a_hand_as_the_in_use_rule_says():
    labelled = pod("shop", "bare")
    labelled["metadata"]["labels"]["istio.io/rev"] = "1-30-dev"
    stuck = old_cluster(deployments=[istiod("1-30-dev", "1.30-dev"), istiod("1-31-0", "1.31.0"),
                                     gateway("1-31-0")],
                        mutating_webhooks=tags(default="1-31-0", prod_stable="1-31-0"),
                        services=[service("istiod-1-30-dev"), stable("1-31-0")],
                        pods=[labelled])
    result = plan(stuck, "1.31.0")
    assert states(result)["prune"] == "needs_a_hand"
    assert "shop/bare (Pod)" in result["needs_a_hand"][0]


def namespaces(**labels_by_name):
    return [namespace(name.replace("_", "-"), **labels) for name, labels in labels_by_name.items()]


def test_the_plan_names_the_namespaces_to_migrate_and_leaves_injection_off_alone():
    cluster = old_cluster(namespaces=namespaces(
        shop={"istio.io/rev": "prod-stable"}, trial={"istio.io/rev": "prod-canary"},
        pinned={"istio.io/rev": "1-30-dev"}, legacy={"istio-injection": "enabled"},
        both={"istio.io/rev": "prod-stable", "istio-injection": "enabled"},
        off={"istio.io/rev": "prod-stable", "istio-injection": "disabled"},
        on_target={"istio.io/rev": "1-31-0"}, plain={}, early={}))
    result = plan(cluster, "1.31.0", canary_namespaces=["early", "gone"])
    assert result["migrate_namespaces"] == ["both", "early", "legacy", "pinned", "shop", "trial"]


def test_the_plan_names_the_stable_services_to_cut_over():
    assert plan(old_cluster(), "1.31.0")["gateway_services"] == [
        {"name": "istio-ingressgateway", "namespace": "istio-gateways"}]


def test_workloads_moved_but_a_namespace_still_on_the_legacy_label_keeps_the_migration_pending():
    moved = old_cluster(deployments=[istiod("1-31-0", "1.31.0"), gateway("1-31-0")],
                        services=[service("istiod-1-31-0"), stable("1-31-0")],
                        mutating_webhooks=tags(default="1-31-0", prod_stable="1-31-0"),
                        namespaces=namespaces(legacy={"istio-injection": "enabled"}),
                        pods=[owned(pod("legacy", "web-1", "1-31-0"), "ReplicaSet")])
    result = plan(moved, "1.31.0")
    assert result["pending"] == ["migrate_workloads"]
    assert "1 namespace(s) to label prod-stable" in [
        s["detail"] for s in result["steps"] if s["name"] == "migrate_workloads"][0]
    relabelled = old_cluster(deployments=[istiod("1-31-0", "1.31.0"), gateway("1-31-0")],
                             services=[service("istiod-1-31-0"), stable("1-31-0")],
                             mutating_webhooks=tags(default="1-31-0", prod_stable="1-31-0"),
                             namespaces=namespaces(legacy={"istio.io/rev": "prod-stable"}),
                             pods=[owned(pod("legacy", "web-1", "1-31-0"), "ReplicaSet")])
    assert plan(relabelled, "1.31.0")["pending"] == []


def test_a_hand_made_service_named_like_a_gateway_of_the_spec_is_cut_over_too():
    hand_made = {"metadata": {"name": "istio-ingressgateway", "namespace": "istio-gateways"},
                 "spec": {"type": "ClusterIP",
                          "selector": {"istio": "ingressgateway", "version": "1-30-dev"}}}
    gateway_pod = pod("istio-gateways", "istio-ingressgateway-1-30-dev-abc")
    gateway_pod["metadata"]["labels"] = {"istio": "ingressgateway", "istio.io/rev": "1-30-dev",
                                         "version": "1-30-dev"}
    gw = gateway("1-30-dev")
    gw["spec"]["selector"] = {"matchLabels": {"istio": "ingressgateway"}}
    cluster = old_cluster(services=[service("istiod-1-30-dev"), hand_made],
                          deployments=[istiod("1-30-dev", "1.30-dev"), gw],
                          pods=[gateway_pod])
    assert plan(cluster, "1.31.0")["gateway_services"] == []
    result = plan(cluster, "1.31.0", gateway_names=["istio-ingressgateway"])
    assert result["gateway_services"] == [{"name": "istio-ingressgateway",
                                           "namespace": "istio-gateways"}]
    assert "cutover_gateways" in result["pending"]
