import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils.rollback_plan import (
    RollbackRefused,
    plan,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.upgrade_record import record_body
from tests.unit.plugins.test_mesh_snapshot import istiod, namespace, pod, service, snapshot
from tests.unit.plugins.test_upgrade_plan import gateway, owned, stable, tags

OLD, NEW = "1-30-3", "1-31-0"


def cluster(revisions=(OLD, NEW), stable_tag=NEW, default=NEW, serving=NEW, recorded=NEW,
            pods_on=(NEW,), ready=2, **overrides):
    raw = dict(
        deployments=[istiod(r, r.replace("-", "."),
                            ready if r == OLD else 2) for r in revisions]
        + [gateway(r) for r in revisions],
        services=[service(f"istiod-{r}") for r in revisions] + [stable(serving)],
        mutating_webhooks=tags(default=default, prod_stable=stable_tag),
        namespaces=[namespace("shop", **{"istio.io/rev": "prod-stable"}),
                    namespace("canary", **{"istio.io/rev": "prod-canary"}),
                    namespace("pinned", **{"istio.io/rev": OLD}),
                    namespace("legacy", **{"istio-injection": "enabled"})],
        pods=[owned(pod("shop", f"web-{r}", r), "ReplicaSet") for r in pods_on],
        upgrade_record=record_body(recorded, "passed", "run-1") if recorded else None)
    raw.update(overrides)
    return snapshot(**raw)


def test_after_a_promoted_upgrade_the_plan_goes_back_to_the_other_revision():
    result = plan(cluster())
    assert result["action"] == "roll-back"
    assert (result["current_revision"], result["back_to"]) == (NEW, OLD)
    assert result["current_version"] == "1.31.0"
    assert result["record_revision"] == NEW
    assert result["gateway_services"] == [{"name": "istio-ingressgateway",
                                           "namespace": "istio-gateways"}]


def test_the_namespaces_that_move_back_are_those_the_upgrade_would_move():
    # Those on the stable or canary tag or the current revision, and those on the default tag
    # through istio-injection=enabled; never one whose istio-injection turns injection off.
    result = plan(cluster(namespaces=[
        namespace("shop", **{"istio.io/rev": "prod-stable"}),
        namespace("canary", **{"istio.io/rev": "prod-canary"}),
        namespace("direct", **{"istio.io/rev": NEW}),
        namespace("pinned", **{"istio.io/rev": OLD}),
        namespace("legacy", **{"istio-injection": "enabled"}),
        namespace("opted-out", **{"istio.io/rev": "prod-stable", "istio-injection": "disabled"})]))
    assert result["namespaces"] == ["canary", "direct", "legacy", "shop"]


def test_an_upgrade_stopped_before_promotion_is_undone_on_the_current_revision():
    # The canary namespaces moved to the new revision, the stable tag never did.
    result = plan(cluster(stable_tag=OLD, default=OLD, serving=OLD, pods_on=(OLD, NEW)))
    assert (result["action"], result["current_revision"], result["back_to"]) == (
        "roll-back", OLD, OLD)
    assert result["record_revision"] == NEW


def test_a_cluster_no_upgrade_reached_has_nothing_to_roll_back():
    result = plan(cluster(revisions=(OLD,), stable_tag=OLD, default=OLD, serving=OLD,
                          pods_on=(OLD,), recorded=None))
    assert result["action"] == "nothing" and result["back_to"] == ""
    assert result["detail"] == (f"only {OLD} is installed and no upgrade to it is recorded; "
                                "nothing to roll back")


def test_a_cluster_without_istio_has_nothing_to_roll_back():
    result = plan(snapshot(deployments=[], services=[], mutating_webhooks=[],
                           validating_webhooks=[]))
    assert result["action"] == "nothing"
    assert result["detail"] == "no Istio revision is installed; nothing to roll back"


def test_a_cluster_already_rolled_back_plans_nothing_more():
    # The record still names the upgrade left behind, so the way back is the current revision.
    result = plan(cluster(stable_tag=OLD, default=OLD, serving=OLD, pods_on=(OLD,)))
    assert (result["action"], result["back_to"]) == ("already-there", OLD)


def test_a_rollback_that_stopped_with_a_gateway_still_on_the_new_revision_goes_on():
    result = plan(cluster(stable_tag=OLD, default=OLD, serving=NEW, pods_on=(OLD,)))
    assert (result["action"], result["back_to"]) == ("roll-back", OLD)


def test_without_a_record_two_revisions_mean_going_back_to_the_other_one():
    result = plan(cluster(stable_tag=OLD, default=OLD, serving=OLD, pods_on=(OLD,), recorded=None))
    assert (result["action"], result["current_revision"], result["back_to"]) == (
        "roll-back", OLD, NEW)


def test_after_pruning_the_old_revision_the_rollback_refuses():
    # One revision left and the record names it: the upgrade happened, its way back is gone.
    with pytest.raises(RollbackRefused, match="name the one to go back to"):
        plan(cluster(revisions=(NEW,)))


def test_a_named_revision_that_is_not_installed_is_refused_with_the_cluster_named():
    with pytest.raises(RollbackRefused) as refused:
        plan(cluster(), requested="1-29-8")
    assert refused.value.message({"context": "cluster2"}) == (
        "cluster2: cannot roll back from 1-31-0: revision 1-29-8 is not installed (pruned?) or "
        "not Ready; nothing to roll back to")


def test_a_previous_revision_that_is_not_ready_is_refused():
    with pytest.raises(RollbackRefused, match="revision 1-30-3 is not installed .* or not Ready"):
        plan(cluster(ready=0))


def test_several_candidates_and_none_named_is_refused_with_the_installed_revisions():
    three = cluster(revisions=("1-29-8", OLD, NEW))
    with pytest.raises(RollbackRefused, match="installed revisions are 1-29-8, 1-30-3, 1-31-0"):
        plan(three)
    assert plan(three, requested="1-29-8")["back_to"] == "1-29-8"


def test_other_tag_names_are_followed():
    snap = cluster(mutating_webhooks=tags(default=NEW, live=NEW),
                   namespaces=[namespace("shop", **{"istio.io/rev": "live"})])
    result = plan(snap, stable_tag="live", canary_tag="try")
    assert (result["current_revision"], result["back_to"], result["namespaces"]) == (
        NEW, OLD, ["shop"])
