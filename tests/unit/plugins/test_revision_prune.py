"""Pruning a revision on plain objects: what belongs to it, what uses it, what is removed."""

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import revision_tags
from ansible_collections.meshfleet.istio.plugins.module_utils.converge import Changes
from ansible_collections.meshfleet.istio.plugins.module_utils.helm import HelmError
from ansible_collections.meshfleet.istio.plugins.module_utils.revision_prune import (
    PruneError,
    helm_connection,
    prune,
)

from tests.unit.plugins.fakes import FakeCluster

OLD, NEW = "1-30-dev", "1-31-0"
GW = "istio-gateways"


def helm_owned(meta, release, namespace):
    meta["annotations"] = {"meta.helm.sh/release-name": release,
                           "meta.helm.sh/release-namespace": namespace}
    meta.setdefault("labels", {})["app.kubernetes.io/managed-by"] = "Helm"
    return meta


def istiod(revision, helm=True):
    meta = {"name": "istiod-%s" % revision, "namespace": "istio-system",
            "labels": {"app": "istiod", "istio.io/rev": revision}}
    if helm:
        helm_owned(meta, "istiod-%s" % revision, "istio-system")
    return {"metadata": meta, "spec": {"replicas": 1,
                                       "selector": {"matchLabels": {"app": "istiod",
                                                                    "istio.io/rev": revision}}},
            "status": {"readyReplicas": 1}}


def gateway(name, revision, kind="ingressgateway", helm=True):
    release = "%s-%s" % (name, revision)
    meta = {"name": release, "namespace": GW, "labels": {"istio": kind, "istio.io/rev": revision}}
    if helm:
        helm_owned(meta, release, GW)
    return {"metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": release, "istio": kind}}},
            "status": {"readyReplicas": 1}}


def pod(ns, name, labels=None, annotation=None, phase="Running"):
    meta = {"name": name, "namespace": ns, "labels": dict(labels or {}), "annotations": {}}
    if annotation:
        meta["annotations"]["istio.io/rev"] = annotation
    return {"metadata": meta, "status": {"phase": phase}}


def gateway_pod(name, revision, kind="ingressgateway"):
    release = "%s-%s" % (name, revision)
    return pod(GW, "%s-abc" % release, {"app": release, "istio": kind, "istio.io/rev": revision,
                                        "sidecar.istio.io/inject": "true"}, revision)


def service(ns, name, selector, labels=None, release=None):
    meta = {"name": name, "namespace": ns, "labels": dict(labels or {})}
    if release:
        helm_owned(meta, release, ns)
    return {"metadata": meta, "spec": {"selector": selector}}


def stable(revision):
    return service(GW, "istio-ingressgateway", {"istio": "ingressgateway", "istio.io/rev": revision},
                   {"meshfleet.io/stable-gateway": "istio-ingressgateway"})


def config_map(ns, revision, release=None):
    meta = {"name": "istio-%s" % revision, "namespace": ns, "labels": {"istio.io/rev": revision}}
    if release:
        helm_owned(meta, release, ns)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"mesh": "{}"}}


def services(stable_revision=NEW):
    """istiod's and the gateways' Services of both revisions, and the stable Service."""
    return ([service("istio-system", "istiod-%s" % r, {"app": "istiod", "istio.io/rev": r},
                     release="istiod-%s" % r) for r in (OLD, NEW)]
            + [stable(stable_revision)]
            + [service(GW, "istio-ingressgateway-%s" % r, {"app": "istio-ingressgateway-%s" % r,
                                                           "istio": "ingressgateway"},
                       release="istio-ingressgateway-%s" % r) for r in (OLD, NEW)])


def state(**overrides):
    """Two revisions installed with Helm, every tag, the validator and traffic on NEW; OLD unused."""
    mesh = {"kubernetes_version": "v1.35.4", "istio_namespace": "istio-system",
            "namespaces": [], "deployments": [istiod(OLD), istiod(NEW), gateway("istio-ingressgateway", OLD),
                                              gateway("istio-ingressgateway", NEW)],
            "pods": [pod("istio-system", "istiod-%s-x" % OLD, {"app": "istiod", "istio.io/rev": OLD}),
                     gateway_pod("istio-ingressgateway", OLD), gateway_pod("istio-ingressgateway", NEW)],
            "services": services(),
            "mutating_webhooks": [revision_tags.tag_webhook_configuration("default", NEW),
                                  revision_tags.tag_webhook_configuration("prod-stable", NEW)],
            "validating_webhooks": [revision_tags.default_validator_target(NEW)]}
    mesh.update(overrides.pop("mesh", {}))
    result = {"mesh": mesh,
              "config_maps": [config_map("istio-system", OLD, release="istiod-%s" % OLD),
                              config_map(GW, OLD)]}
    result.update(overrides)
    return result


class FakeHelm(object):
    def __init__(self, releases):
        self.releases = {ref: "kind: Deployment\nmetadata:\n  name: %s\n" % ref[1] for ref in releases}
        self.runs = []
        self.fail_on = None

    def metadata(self, release, namespace):
        if (namespace, release) in self.releases:
            return {"name": release, "status": "deployed"}
        return None

    def manifest(self, release, namespace):
        return self.releases[(namespace, release)]

    def run(self, args, absent_ok=False):
        self.runs.append(args)
        if args[1] == self.fail_on:
            raise HelmError("helm uninstall failed: boom")
        self.releases.pop((args[3], args[1]))
        return ""


ALL_RELEASES = [("istio-system", "istiod-%s" % r) for r in (OLD, NEW)] + [
    (GW, "istio-ingressgateway-%s" % r) for r in (OLD, NEW)]


class Outcome(object):
    def __init__(self, helm, cluster, changes, removed, in_use, diffs):
        self.helm, self.cluster, self.changes = helm, cluster, changes
        self.removed, self.in_use, self.diffs = removed, in_use, diffs


def run_prune(st, helm=None, cluster=None, revision=OLD, diff=False):
    helm = helm or FakeHelm(ALL_RELEASES)
    cluster = cluster or FakeCluster(st["config_maps"])
    changes = Changes()
    return Outcome(helm, cluster, changes,
                   *prune(cluster, helm, changes, st, revision, "istio-system", diff))


def test_an_unused_revision_goes_gateways_first_then_copies_then_istiod():
    out = run_prune(state())
    assert out.removed == ["release istio-gateways/istio-ingressgateway-1-30-dev",
                           "ConfigMap istio-gateways/istio-1-30-dev",
                           "release istio-system/istiod-1-30-dev"]
    assert out.in_use == []
    assert out.helm.runs == [["uninstall", "istio-ingressgateway-1-30-dev", "-n", GW, "--wait"],
                             ["uninstall", "istiod-1-30-dev", "-n", "istio-system", "--wait"]]
    assert sorted(out.helm.releases) == [(GW, "istio-ingressgateway-1-31-0"),
                                         ("istio-system", "istiod-1-31-0")]
    assert out.cluster.written() == [("delete", "ConfigMap", GW, "istio-1-30-dev")]
    assert out.changes.changed_objects == ["istio-gateways/ConfigMap/istio-1-30-dev"]


def other_named_gateway(name, revision):
    """A gateway chart release named `name`, not <gateway>-<revision>."""
    deployment = gateway(name, revision)
    deployment["metadata"]["name"] = name
    deployment["metadata"]["annotations"]["meta.helm.sh/release-name"] = name
    return deployment


def test_a_gateway_release_of_another_name_goes_with_its_revision():
    st = state()
    st["mesh"]["deployments"].append(other_named_gateway("edge", OLD))
    out = run_prune(st, helm=FakeHelm(ALL_RELEASES + [(GW, "edge")]))
    assert out.removed[:2] == ["release istio-gateways/istio-ingressgateway-1-30-dev",
                               "release istio-gateways/edge"]
    assert (GW, "edge") not in out.helm.releases


def test_its_own_gateway_and_istiod_pods_do_not_count_but_other_pods_do():
    st = state()
    st["mesh"]["pods"] += [pod("shop", "web", {"istio.io/rev": "other"}, OLD),
                           pod("shop", "job", {}, OLD, phase="Succeeded"),
                           pod(GW, "stray", {"istio": "ingressgateway", "istio.io/rev": OLD})]
    with pytest.raises(PruneError) as error:
        run_prune(st)
    assert error.value.in_use == ["pod shop/web", "pod istio-gateways/stray"]


def test_every_use_is_named_and_nothing_is_removed():
    st = state(mesh={"namespaces": [{"metadata": {"name": "shop", "labels": {"istio.io/rev": "prod-canary"}}}],
                     "mutating_webhooks": [revision_tags.tag_webhook_configuration("default", NEW),
                                           revision_tags.tag_webhook_configuration("prod-canary", OLD)],
                     "validating_webhooks": [revision_tags.default_validator_target(OLD)],
                     "services": services(stable_revision=OLD)})
    st["mesh"]["services"] += [service("shop", "legacy-gw", {"istio.io/rev": OLD, "app": "x"})]
    removed_before = FakeHelm(ALL_RELEASES)
    with pytest.raises(PruneError) as error:
        run_prune(st, helm=removed_before)
    assert error.value.in_use == [
        "tag prod-canary", "namespace shop", "validator istiod-default-validator",
        "stable gateway Service istio-gateways/istio-ingressgateway selects it",
        "Service shop/legacy-gw selects it"]
    assert str(error.value).startswith("revision 1-30-dev is still in use, not removed: tag prod-canary; "
                                       "namespace shop; ")
    assert removed_before.runs == []


def test_services_of_its_releases_and_tag_services_are_not_uses():
    st = state(mesh={"mutating_webhooks": [revision_tags.tag_webhook_configuration("default", NEW)]})
    st["mesh"]["services"] += [revision_tags.tag_service("gone", OLD)]
    assert revision_tags.tag_service("gone", OLD)["spec"]["selector"]["istio.io/rev"] == OLD
    out = run_prune(st)
    assert out.in_use == [] and len(out.removed) == 3


def test_a_pruned_revision_is_no_change_and_runs_nothing():
    st = state(mesh={"deployments": [istiod(NEW), gateway("istio-ingressgateway", NEW)],
                     "pods": [gateway_pod("istio-ingressgateway", NEW)]},
               config_maps=[])
    helm = FakeHelm([r for r in ALL_RELEASES if NEW in r[1]])
    out = run_prune(st, helm=helm)
    assert (out.removed, out.in_use, out.diffs) == ([], [], [])
    assert out.helm.runs == [] and out.cluster.writes == [] and not out.changes.changed


def test_nothing_left_but_still_named_reports_the_uses_without_failing():
    st = state(mesh={"deployments": [istiod(NEW)], "pods": [],
                     "namespaces": [{"metadata": {"name": "shop", "labels": {"istio.io/rev": OLD}}}]},
               config_maps=[])
    out = run_prune(st, helm=FakeHelm([("istio-system", "istiod-1-31-0")]))
    assert out.removed == [] and out.in_use == ["namespace shop"]


def test_check_mode_predicts_the_same_removals_and_uninstalls_nothing():
    cluster = FakeCluster(state()["config_maps"], check_mode=True)
    out = run_prune(state(), cluster=cluster, diff=True)
    assert len(out.removed) == 3
    assert out.helm.runs == [] and len(out.helm.releases) == 4
    assert out.cluster.written() == [("delete", "ConfigMap", GW, "istio-1-30-dev")]
    assert ("ConfigMap", GW, "istio-1-30-dev") in out.cluster.objects
    assert [d["before_header"] for d in out.diffs] == ["release istio-gateways/istio-ingressgateway-1-30-dev",
                                                       "istio-gateways/ConfigMap/istio-1-30-dev",
                                                       "release istio-system/istiod-1-30-dev"]
    assert out.diffs[1]["before"]["data"] == {"mesh": "{}"} and out.diffs[1]["after"] == {}
    assert out.diffs[0]["before"].startswith("kind: Deployment") and out.diffs[0]["after"] == ""


def test_a_revision_part_without_its_helm_release_is_refused_before_any_removal():
    st = state(mesh={"deployments": [istiod(OLD), istiod(NEW), gateway("istio-ingressgateway", OLD, helm=False),
                                     gateway("istio-ingressgateway", NEW)]})
    helm = FakeHelm([r for r in ALL_RELEASES if r[1] != "istio-ingressgateway-1-30-dev"])
    with pytest.raises(PruneError, match="no Helm release owns Deployment "
                                         "istio-gateways/istio-ingressgateway-1-30-dev"):
        run_prune(st, helm=helm)
    assert helm.runs == []


def test_an_istioctl_revision_is_refused_with_the_istioctl_command_that_removes_it():
    by_istioctl = istiod(OLD, helm=False)
    by_istioctl["metadata"]["labels"].update({"operator.istio.io/managed": "Reconcile",
                                              "operator.istio.io/version": "1.30.3"})
    st = state(mesh={"deployments": [by_istioctl, istiod(NEW),
                                     gateway("istio-ingressgateway", OLD),
                                     gateway("istio-ingressgateway", NEW)]})
    helm = FakeHelm([r for r in ALL_RELEASES if r[1] != "istiod-%s" % OLD])
    with pytest.raises(PruneError, match=r"installed by istioctl: `istioctl uninstall "
                                         r"--revision %s -y`" % OLD):
        run_prune(st, helm=helm)
    assert helm.runs == []


def test_a_failing_uninstall_says_what_was_removed_before_it():
    helm = FakeHelm(ALL_RELEASES)
    helm.fail_on = "istiod-1-30-dev"
    with pytest.raises(HelmError, match="removed before the failure: release istio-gateways/"
                                        "istio-ingressgateway-1-30-dev, ConfigMap"):
        run_prune(state(), helm=helm)


def test_helm_gets_the_kubeconfig_and_context_and_nothing_it_cannot_use():
    assert helm_connection({"kubeconfig": "/k", "context": "c1"}, {}) == ("/k", "c1")
    assert helm_connection({}, {"K8S_AUTH_KUBECONFIG": "/e", "K8S_AUTH_CONTEXT": "c2"}) == ("/e", "c2")
    with pytest.raises(PruneError, match="use kubeconfig and context instead of host, api_key"):
        helm_connection({"host": "https://x", "api_key": "t"}, {})
    with pytest.raises(PruneError, match="instead of impersonate_user"):
        helm_connection({}, {"K8S_AUTH_IMPERSONATE_USER": "bob"})
