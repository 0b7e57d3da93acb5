"""Every conflict that stops an install, at once; what install repairs is none."""

from ansible_collections.meshfleet.istio.plugins.module_utils.install_conflicts import (
    install_conflicts,
)

TAGS = ["default", "prod-stable"]


def mesh(**overrides):
    facts = {"engine": "helm", "revisions": {"1-31-0": {"ready": True}},
             "tags": {"default": "1-31-0", "prod-stable": "1-31-0"},
             "overlapping_webhooks": [],
             "validator": {"exists": True, "target_exists": False}}
    facts.update(overrides)
    return facts


def test_a_healthy_cluster_and_a_broken_validator_are_no_conflict():
    assert install_conflicts(mesh(), "1-31-0", TAGS) == []
    assert install_conflicts(mesh(revisions={}, tags={}, engine="none"), "1-31-0", TAGS) == []


def test_a_tag_pointing_at_the_revision_being_installed_is_no_conflict():
    assert install_conflicts(mesh(revisions={}, tags={"default": "1-31-0"}), "1-31-0", TAGS) == []


def test_every_conflict_is_listed_at_once_with_its_way_out():
    broken = mesh(engine="operator",
                  revisions={"default": {"ready": True}},
                  tags={"default": "1-29-0", "prod-stable": "1-31-0", "other": "0-0-0"},
                  overlapping_webhooks=[{"claim": "namespace istio-injection=enabled",
                                         "configurations": ["a", "b"]}])
    assert install_conflicts(broken, "1-31-0", TAGS, "Kubernetes v1.20 is too old") == [
        "Kubernetes v1.20 is too old",
        "the installed Istio is managed by operator; migrate it with the upgrade playbook",
        "a non-revisioned istiod (Deployment istiod) is installed; meshfleet installs revisioned "
        "control planes only",
        "injection webhooks overlap on namespace istio-injection=enabled: a, b; remove or "
        "neutralise all but one",
        "tag default points at revision 1-29-0, which is not installed: move it to an installed "
        "revision (module meshfleet.istio.revision_tag, overwrite: true) or install 1-29-0 first",
    ]
