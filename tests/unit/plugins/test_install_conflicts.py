"""Every conflict that stops an install, at once; what install repairs is none."""

from ansible_collections.meshfleet.istio.plugins.module_utils.install_conflicts import (
    install_conflicts,
)

TAGS = ["default", "prod-stable"]
ISTIOCTL_DEFAULT = {"ready": True, "engine": "istioctl", "deployment": "istiod",
                    "version": "1.31.0"}


def mesh(**overrides):
    facts = {"engine": "helm", "revisions": {"1-31-0": {"ready": True, "engine": "helm",
                                                        "deployment": "istiod-1-31-0"}},
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


def test_an_istioctl_install_is_taken_over_by_the_upgrade_not_by_install():
    istioctl = mesh(engine="istioctl", revisions={"default": ISTIOCTL_DEFAULT},
                    tags={"default": "default"})
    assert install_conflicts(istioctl, "1-31-0", TAGS) == [
        "the non-revisioned istiod default (Deployment istiod, Istio 1.31.0) was installed by "
        "istioctl, not meshfleet; take it over with the upgrade playbook "
        "(meshfleet_target_version: the version to run): it installs meshfleet's revision beside "
        "it, moves its tags and workloads, and removes it once nothing uses it"]
    assert install_conflicts(istioctl, "1-31-0", TAGS, canary=True) == []


def test_an_istioctl_revision_of_the_same_name_is_refused_even_in_a_canary():
    same = mesh(engine="istioctl", revisions={"1-31-0": dict(ISTIOCTL_DEFAULT,
                                                             deployment="istiod-1-31-0")})
    assert install_conflicts(same, "1-31-0", TAGS, canary=True) == [
        "the istiod 1-31-0 (Deployment istiod-1-31-0, Istio 1.31.0) was installed by istioctl "
        "under the revision name meshfleet would install; install another version, or "
        "uninstall it first"]


def test_every_conflict_is_listed_at_once_with_its_way_out():
    broken = mesh(engine="mixed",
                  revisions={"default": {"ready": True, "engine": "helm", "deployment": "istiod"},
                             "1-22-8": {"engine": "operator", "deployment": "istiod-1-22-8"}},
                  tags={"default": "1-29-0", "prod-stable": "1-31-0", "other": "0-0-0"},
                  overlapping_webhooks=[{"claim": "namespace istio-injection=enabled",
                                         "configurations": ["a", "b"]}])
    assert install_conflicts(broken, "1-31-0", TAGS, "Kubernetes v1.20 is too old",
                             canary=True) == [
        "Kubernetes v1.20 is too old",
        "an IstioOperator meshfleet did not write manages the installed Istio (revision(s) "
        "1-22-8); meshfleet does not take over those control planes yet: keep managing them "
        "with the operator",
        "injection webhooks overlap on namespace istio-injection=enabled: a, b; remove or "
        "neutralise all but one",
        "tag default points at revision 1-29-0, which is not installed: move it to an installed "
        "revision (module meshfleet.istio.revision_tag, overwrite: true) or install 1-29-0 first",
    ]


def test_a_non_revisioned_helm_release_is_taken_over_by_the_upgrade_not_by_install():
    helm_default = mesh(revisions={"default": {"ready": True, "engine": "helm",
                                               "deployment": "istiod", "version": "1.30.3"}},
                        tags={})
    assert install_conflicts(helm_default, "1-31-0", TAGS) == [
        "the non-revisioned istiod default (Deployment istiod, Istio 1.30.3) is a Helm release "
        "meshfleet did not install (meshfleet installs revisioned control planes); take it over "
        "with the upgrade playbook (meshfleet_target_version: the version to run): it installs "
        "meshfleet's revision beside it, moves its tags and workloads, and removes it once "
        "nothing uses it"]
    assert install_conflicts(helm_default, "1-31-0", TAGS, canary=True) == []


OWN_OPERATOR = {"ready": True, "engine": "operator", "deployment": "istiod-1-22-8",
                "version": "1.22.8", "istio_operator": "istiod-1-22-8",
                "meshfleet_operator": True}


def test_meshfleets_own_istiooperators_are_no_conflict_for_the_operator_engine():
    own = mesh(engine="operator", revisions={"1-22-8": OWN_OPERATOR},
               tags={"default": "1-22-8", "prod-stable": "1-22-8"})
    assert install_conflicts(own, "1-22-8", TAGS, engine="operator") == []
    assert install_conflicts(own, "1-23-6", TAGS, canary=True, engine="operator") == []


def test_a_helm_install_over_meshfleets_operator_engine_names_the_engine_setting():
    own = mesh(engine="operator", revisions={"1-22-8": OWN_OPERATOR},
               tags={"default": "1-22-8", "prod-stable": "1-22-8"})
    assert install_conflicts(own, "1-22-8", TAGS) == [
        "meshfleet's operator engine manages revision(s) 1-22-8: set meshfleet_istio_engine: "
        "operator to keep it"]


def test_the_operator_engine_does_not_install_beside_a_helm_release():
    assert install_conflicts(mesh(), "1-22-8", TAGS, engine="operator") == [
        "the istiod 1-31-0 (Deployment istiod-1-31-0) is a Helm release: the operator engine "
        "does not install beside Helm; install with the Helm engine"]


def test_an_istiooperator_written_by_hand_is_refused_by_both_engines():
    foreign = mesh(engine="operator", tags={},
                   revisions={"1-22-8": dict(OWN_OPERATOR, meshfleet_operator=False)})
    for engine in ("helm", "operator"):
        [refusal] = install_conflicts(foreign, "1-22-8", TAGS, engine=engine)
        assert refusal.startswith("an IstioOperator meshfleet did not write manages")
