"""The one in-use rule, and that the status report (mesh_info's facts) and revision_prune's
refusal give the same reasons for the same read."""

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import revision_tags
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import MeshSnapshot
from ansible_collections.meshfleet.istio.plugins.module_utils.revision_prune import PruneError
from ansible_collections.meshfleet.istio.plugins.module_utils.revision_usage import (
    own_gateway_pods,
    uses_of,
)
from tests.unit.plugins.test_revision_prune import (
    GW,
    gateway,
    NEW,
    OLD,
    other_named_gateway,
    pod,
    run_prune,
    service,
    services,
    state,
)


def namespace(name, **labels):
    return {"metadata": {"name": name, "labels": labels}}


def tagged(**pointing):
    return [revision_tags.tag_webhook_configuration(tag.replace("_", "-"), revision)
            for tag, revision in pointing.items()]


def only_its_own_gateway_pods():
    return state()


def a_stable_service():
    return state(mesh={"services": services(stable_revision=OLD)})


def a_namespace_label():
    return state(mesh={"namespaces": [namespace("shop", **{"istio.io/rev": OLD})]})


def a_bare_pod():
    return state(mesh={"pods": state()["mesh"]["pods"] + [pod("shop", "bare", annotation=OLD)]})


def a_tag():
    return state(mesh={"mutating_webhooks": tagged(default=NEW, prod_canary=OLD)})


def the_validator():
    return state(mesh={"validating_webhooks": [revision_tags.default_validator_target(OLD)]})


CASES = [
    (only_its_own_gateway_pods, []),
    (a_stable_service, ["stable gateway Service istio-gateways/istio-ingressgateway selects it"]),
    (a_namespace_label, ["namespace shop"]),
    (a_bare_pod, ["pod shop/bare"]),
    (a_tag, ["tag prod-canary"]),
    (the_validator, ["validator istiod-default-validator"]),
]


def reported(st, revision=OLD):
    """What the status report says uses the revision (mesh_info's facts)."""
    return MeshSnapshot(st["mesh"]).facts()["revisions"][revision]["in_use"]


def refused_for(st, revision=OLD):
    """What revision_prune's refusal names ([] when it prunes)."""
    try:
        run_prune(st, revision=revision)
    except PruneError as error:
        return error.in_use
    return []


@pytest.mark.parametrize("scene, reasons", CASES, ids=[case[0].__name__ for case in CASES])
def test_the_report_and_the_prune_give_the_same_reasons(scene, reasons):
    st = scene()
    assert uses_of(MeshSnapshot(st["mesh"]), OLD) == reasons
    assert reported(st) == reasons
    assert refused_for(st) == reasons


def test_its_own_gateway_pods_are_found_by_their_deployments_selector():
    assert own_gateway_pods(state()["mesh"], OLD) == {(GW, "istio-ingressgateway-1-30-dev-abc")}


def test_a_tag_is_followed_by_namespaces_pods_and_services_but_its_own_service_is_not_a_use():
    st = a_tag()
    st["mesh"]["namespaces"] = [namespace("shop", **{"istio.io/rev": "prod-canary"})]
    st["mesh"]["pods"] += [pod("lab", "probe", {"istio.io/rev": "prod-canary"}),
                           pod("lab", "done", {"istio.io/rev": "prod-canary"}, phase="Succeeded")]
    st["mesh"]["services"] += [revision_tags.tag_service("prod-canary", OLD),
                               service("shop", "legacy", {"istio.io/rev": "prod-canary"})]
    assert reported(st) == refused_for(st) == [
        "tag prod-canary", "namespace shop", "pod lab/probe", "Service shop/legacy selects it"]


def test_injection_enabled_goes_through_the_default_tag():
    st = state(mesh={"mutating_webhooks": tagged(default=OLD),
                     "namespaces": [namespace("shop", **{"istio-injection": "enabled"})]})
    assert reported(st) == refused_for(st) == ["tag default", "namespace shop"]


def test_a_service_of_its_releases_or_named_after_them_is_not_a_use():
    unannotated = service(GW, "istio-ingressgateway-%s" % OLD, {"istio.io/rev": OLD})
    st = state(mesh={"services": [unannotated]})
    assert reported(st) == []


def hand_made_gateway(revision):
    """A gateway chart release installed by hand: the chart labels only the pods with the
    revision, and the release's values add a `version` label."""
    deployment = gateway("istio-ingressgateway", revision)
    del deployment["metadata"]["labels"]["istio.io/rev"]
    deployment["metadata"]["labels"]["version"] = revision
    deployment["spec"]["template"] = {"metadata": {"labels": {
        "app": "istio-ingressgateway-%s" % revision, "istio": "ingressgateway",
        "istio.io/rev": revision, "version": revision}}}
    return deployment


def hand_made_layout():
    st = state()
    st["mesh"]["deployments"][2] = hand_made_gateway(OLD)
    st["mesh"]["pods"][1]["metadata"]["labels"]["version"] = OLD
    return st


def test_a_gateway_labelled_with_its_revision_only_on_its_pods_is_still_the_revisions():
    st = hand_made_layout()
    assert own_gateway_pods(st["mesh"], OLD) == {(GW, "istio-ingressgateway-1-30-dev-abc")}
    assert reported(st) == refused_for(st) == []


def test_a_service_selecting_the_revisions_gateway_pods_by_other_labels_is_a_use():
    st = hand_made_layout()
    st["mesh"]["services"] += [service(GW, "legacy-ingress",
                                       {"istio": "ingressgateway", "version": OLD})]
    assert reported(st) == refused_for(st) == ["Service istio-gateways/legacy-ingress selects it"]
    assert "Service istio-gateways/legacy-ingress selects it" not in reported(st, NEW)


def gateway_problems(st):
    return [p for p in MeshSnapshot(st["mesh"]).problems() if p.startswith("gateway Deployment")]


def test_meshfleets_own_gateways_are_no_problem():
    st = state()
    assert [g["meshfleet"] for g in MeshSnapshot(st["mesh"]).gateways()] == [True, True]
    assert gateway_problems(st) == []


def test_a_gateway_release_of_another_name_is_reported_with_its_fate():
    st = state()
    st["mesh"]["deployments"].append(other_named_gateway("edge", OLD))
    facts = [g for g in MeshSnapshot(st["mesh"]).gateways() if g["name"] == "edge"]
    assert [(g["helm_release"], g["meshfleet"]) for g in facts] == [("istio-gateways/edge", False)]
    assert gateway_problems(st) == [
        "gateway Deployment istio-gateways/edge (revision 1-30-dev) is not meshfleet's (its "
        "gateways are Helm releases <gateway>-<revision>): upgrade.yml removes its release "
        "istio-gateways/edge with revision 1-30-dev once nothing selects its pods"]


def test_a_gateway_no_helm_release_owns_names_the_tool_that_made_it():
    st = state()
    st["mesh"]["deployments"].append(gateway("istio-eastwestgateway", OLD, "eastwestgateway",
                                             helm=False))
    assert gateway_problems(st) == [
        "gateway Deployment istio-gateways/istio-eastwestgateway-1-30-dev (revision 1-30-dev) is "
        "not meshfleet's (its gateways are Helm releases <gateway>-<revision>): no Helm release "
        "owns it: remove it with the tool that made it once nothing selects its pods, or "
        "upgrade.yml stops before removing revision 1-30-dev"]
