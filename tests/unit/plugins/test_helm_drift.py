"""What status says about the mesh's Helm releases (pure logic over releases as helm stores
them; the real helm's revisions are in tests/playbooks/test_install.py)."""

from ansible_collections.meshfleet.istio.plugins.module_utils.helm_drift import (
    changed_paths,
    problems,
    summary,
)


def release(revision, description, config, status="deployed", chart="gateway",
            version="1.31.0", name="istio-ingressgateway-1-31-0", namespace="istio-gateways"):
    return {"name": name, "namespace": namespace, "version": revision, "config": config,
            "info": {"status": status, "description": description,
                     "last_deployed": "2026-12-01T10:00:00Z"},
            "chart": {"metadata": {"name": chart, "version": version}}}


def test_changed_paths_are_dotted_and_cover_added_removed_and_changed_values():
    before = {"service": {"type": "ClusterIP", "ports": [1]}, "revision": "1-31-0"}
    after = {"service": {"type": "LoadBalancer", "ports": [1]}, "revision": "1-31-0",
             "replicaCount": 5}
    assert changed_paths(before, after) == ["replicaCount", "service.type"]
    assert changed_paths(before, before) == []


def test_a_revision_made_by_hand_after_meshfleet_s_is_named_with_its_values():
    fact = summary({"newest": release(3, "Upgrade complete", {"replicaCount": 5}),
                    "meshfleet_last": release(2, "meshfleet: values differ", {})})
    assert fact["made_by_meshfleet"] is False
    assert fact["changed_outside"] == {"meshfleet_revision": 2, "values_changed": ["replicaCount"],
                                       "chart_before": "1.31.0"}
    assert problems([fact]) == [
        "Helm release istio-gateways/istio-ingressgateway-1-31-0 was changed outside meshfleet: "
        "revision 3 ('Upgrade complete') after meshfleet's revision 2 changed replicaCount; "
        "install.yml puts meshfleet's values back (make a wanted change in the fleet spec "
        "instead)"]


def test_meshfleet_s_own_revision_and_a_release_it_never_made_are_no_problem():
    ours = summary({"newest": release(2, "meshfleet: not installed", {}), "meshfleet_last": None})
    theirs = summary({"newest": release(1, "Install complete", {}), "meshfleet_last": None})
    assert ours["made_by_meshfleet"] and not theirs["made_by_meshfleet"]
    assert problems([ours, theirs]) == []


def test_a_pending_release_and_a_base_chart_rolled_back_by_hand_are_problems():
    pending = summary({"newest": release(4, "meshfleet: values differ", {},
                                         status="pending-upgrade"), "meshfleet_last": None})
    base = summary({"newest": release(3, "Rollback to 1", {"defaultRevision": "1-30-2"},
                                      chart="base", version="1.30.2", name="istio-base",
                                      namespace="istio-system"),
                    "meshfleet_last": release(2, "meshfleet: chart 1.30.2 -> 1.31.0",
                                              {"defaultRevision": "1-31-0"}, chart="base",
                                              name="istio-base", namespace="istio-system")})
    found = problems([pending, base])
    assert found[0].startswith("Helm release istio-gateways/istio-ingressgateway-1-31-0 is "
                               "pending-upgrade (revision 4)")
    assert found[1].startswith(
        "Helm release istio-system/istio-base was changed outside meshfleet: revision 3 "
        "('Rollback to 1') after meshfleet's revision 2 changed defaultRevision; chart 1.31.0 -> "
        "1.30.2; install.yml")
    assert len(found) == 2
