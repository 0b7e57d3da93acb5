"""Which injection webhooks would inject a pod, on webhook configurations rendered as the istiod
chart renders them."""

from ansible_collections.meshfleet.istio.plugins.module_utils import injectors, revision_tags


def hooks(*configurations):
    return injectors.injector_hooks(list(configurations))


DEFAULT = revision_tags.tag_webhook_configuration("default", "1-31-0")
STABLE = revision_tags.tag_webhook_configuration("prod-stable", "1-30-dev")


def test_a_tagged_namespace_has_exactly_the_tags_injector():
    served = injectors.injectors_of(hooks(DEFAULT, STABLE), {"istio.io/rev": "prod-stable"}, {})
    assert served == [("istio-revision-tag-prod-stable", "1-30-dev")]


def test_injection_enabled_is_served_by_the_default_tag():
    served = injectors.injectors_of(hooks(DEFAULT, STABLE), {"istio-injection": "enabled"}, {})
    assert served == [("istio-revision-tag-default", "1-31-0")]


def test_a_pod_that_opts_out_gets_no_injector():
    served = injectors.injectors_of(hooks(DEFAULT), {"istio-injection": "enabled"},
                                    {"sidecar.istio.io/inject": "false"})
    assert served == []


def test_a_pod_label_asks_for_its_revision_in_an_unlabelled_namespace():
    served = injectors.injectors_of(hooks(DEFAULT, STABLE), {}, {"istio.io/rev": "prod-stable"})
    assert served == [("istio-revision-tag-prod-stable", "1-30-dev")]


def test_a_legacy_injector_beside_the_default_tag_is_a_second_injector_until_neutralised():
    legacy = revision_tags.tag_webhook_configuration("default", "1-30-dev")
    legacy["metadata"]["name"] = "istio-sidecar-injector"
    for hook in legacy["webhooks"]:
        hook["clientConfig"]["service"]["name"] = "istiod"
    enabled = {"istio-injection": "enabled"}
    assert injectors.injectors_of(hooks(DEFAULT, legacy), enabled, {}) == [
        ("istio-revision-tag-default", "1-31-0"), ("istio-sidecar-injector", "default")]
    neutralised = revision_tags.neutralised_legacy_injector(legacy)
    assert injectors.injectors_of(hooks(DEFAULT, neutralised), enabled, {}) == [
        ("istio-revision-tag-default", "1-31-0")]


def test_which_namespaces_ask_for_injection():
    assert injectors.asks_for_injection({"istio-injection": "enabled"})
    assert injectors.asks_for_injection({"istio.io/rev": "prod-stable"})
    assert not injectors.asks_for_injection({"istio-injection": "disabled", "istio.io/rev": "x"})
    assert not injectors.asks_for_injection({})


def pod(name, namespace="shop", annotations=None, labels=None, phase="Running", **spec):
    return {"metadata": {"name": name, "namespace": namespace, "annotations": annotations or {},
                         "labels": labels or {}},
            "spec": spec, "status": {"phase": phase}}


def test_pods_without_sidecar_leave_out_injected_opted_out_finished_and_host_network_pods():
    pods = [pod("bare"), pod("injected", annotations={"istio.io/rev": "1-31-0"}),
            pod("status", annotations={"sidecar.istio.io/status": "{}"}),
            pod("opted-out", labels={"sidecar.istio.io/inject": "false"}),
            pod("done", phase="Succeeded"), pod("host", hostNetwork=True),
            pod("elsewhere", namespace="other")]
    assert injectors.pods_without_sidecar(pods, "shop") == ["bare"]
