import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import catalogue, revisions


@pytest.mark.parametrize("version,revision", [("1.31.0", "1-31-0"), ("1.30-dev", "1-30-dev"),
                                              ("1.9.7", "1-9-7")])
def test_revision_is_named_after_the_version(version, revision):
    assert revisions.revision_name(version) == revision


@pytest.mark.parametrize("bad", ["1.31", "v1.31.0", "1.31.0-rc.1", "latest", ""])
def test_malformed_versions_are_refused(bad):
    with pytest.raises(revisions.VersionError, match="not an Istio version"):
        revisions.IstioVersion(bad)


@pytest.mark.parametrize("bad", ["1.31.0", "Prod", "-x", "a" * 64, ""])
def test_revision_names_must_be_dns_labels(bad):
    with pytest.raises(revisions.VersionError, match="not a valid revision or tag name"):
        revisions.check_revision_name(bad)


def test_a_branch_build_orders_before_the_releases_of_its_minor():
    assert revisions.IstioVersion("1.30-dev") < revisions.IstioVersion("1.30.0")
    assert revisions.IstioVersion("1.30.5") < revisions.IstioVersion("1.31.0")


def test_one_minor_is_the_default_jump():
    assert revisions.check_upgrade_jump("1.30.5", "1.31.0") == 1
    assert revisions.check_upgrade_jump("1.31.0", "1.31.1") == 0


def test_two_minors_need_the_policy_raised():
    with pytest.raises(revisions.VersionError, match="jumps 2 minors; the policy allows 1"):
        revisions.check_upgrade_jump("1.29.8", "1.31.0")
    assert revisions.check_upgrade_jump("1.29.8", "1.31.0", max_minors=2) == 2


def test_three_minors_are_never_allowed():
    with pytest.raises(revisions.VersionError, match="1 or 2 minors"):
        revisions.check_upgrade_jump("1.28.0", "1.31.0", max_minors=3)


def test_downgrades_are_refused():
    with pytest.raises(revisions.VersionError, match="downgrade; use the rollback playbook"):
        revisions.check_upgrade_jump("1.31.0", "1.30.5")


def test_catalogue_knows_supported_releases_and_their_kubernetes_range():
    facts = catalogue.lookup("1.31.0")
    assert (facts["kubernetes_min"], facts["kubernetes_max"]) == ("1.32", "1.36")
    assert facts["tag_service"] is True
    assert catalogue.lookup("1.27.9")["tag_service"] is False
    assert catalogue.lookup("1.23.6")["engines"] == ["operator", "helm"]


def test_from_1_25_istiod_allocates_service_entry_addresses_itself():
    assert catalogue.lookup("1.24.6")["dns_auto_allocation"] == "proxy"
    assert catalogue.lookup("1.25.0")["dns_auto_allocation"] == "istiod"
    assert catalogue.lookup("1.30-dev")["dns_auto_allocation"] == "istiod"


@pytest.mark.parametrize("version,message", [
    ("1.31.9", "newest known 1.31 release is 1.31.1"),
    ("1.40.0", "not in meshfleet's version catalogue"),
])
def test_unknown_versions_are_refused(version, message):
    with pytest.raises(catalogue.UnknownVersion, match=message):
        catalogue.lookup(version)


def test_kubernetes_outside_the_range_is_refused():
    assert catalogue.check_kubernetes("1.31.0", "v1.35.4")["minor"] == "1.31"
    with pytest.raises(revisions.VersionError, match="Kubernetes 1.30 is outside the range"):
        catalogue.check_kubernetes("1.31.0", "v1.30.14")
    with pytest.raises(revisions.VersionError, match="outside"):
        catalogue.check_kubernetes("1.22.8", "1.35.4+k3s1")
