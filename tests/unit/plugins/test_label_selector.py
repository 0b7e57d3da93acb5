"""Label selectors in their three forms, as Kubernetes reads them."""

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import (
    selector_matches,
    selector_string,
    service_selector_string,
    service_selects,
    webhook_selects,
)

LABELS = {"app": "cart", "tier": "web"}


def expression(key, operator, *values):
    found = {"key": key, "operator": operator}
    if values:
        found["values"] = list(values)
    return found


def matches(*expressions):
    return selector_matches({"matchExpressions": list(expressions)}, LABELS)


def test_a_null_selector_selects_nothing_and_an_empty_one_everything():
    assert not selector_matches(None, LABELS)
    assert selector_matches({}, LABELS)
    assert selector_matches({"matchLabels": {}, "matchExpressions": []}, {})


def test_match_labels_and_match_expressions_must_all_hold():
    assert selector_matches({"matchLabels": {"app": "cart"}}, LABELS)
    assert not selector_matches({"matchLabels": {"app": "cart", "tier": "db"}}, LABELS)
    assert not selector_matches({"matchLabels": {"app": "cart"},
                                 "matchExpressions": [expression("tier", "In", "db")]}, LABELS)


def test_in_needs_the_key_with_one_of_the_values():
    assert matches(expression("tier", "In", "web", "api"))
    assert not matches(expression("tier", "In", "db"))
    assert not matches(expression("zone", "In", "a"))


def test_not_in_matches_other_values_and_a_missing_key():
    assert matches(expression("tier", "NotIn", "db"))
    assert not matches(expression("tier", "NotIn", "web"))
    assert matches(expression("zone", "NotIn", "a"))


def test_exists_and_does_not_exist_look_at_the_key_only():
    assert matches(expression("app", "Exists"))
    assert not matches(expression("zone", "Exists"))
    assert matches(expression("zone", "DoesNotExist"))
    assert not matches(expression("app", "DoesNotExist"))


def test_an_unknown_operator_is_refused_as_kubernetes_refuses_it():
    with pytest.raises(ValueError, match="operator 'Gt' of key 'tier' is not one of In, NotIn"):
        matches(expression("tier", "Gt", "1"))
    with pytest.raises(ValueError, match="Kubernetes rejects"):
        selector_matches({"matchLabels": {"app": "other"},
                          "matchExpressions": [expression("tier", "in", "web")]}, LABELS)
    with pytest.raises(ValueError):
        selector_string({"matchExpressions": [expression("tier", "Gt", "1")]})


def test_a_service_with_an_empty_or_missing_selector_selects_no_pod():
    assert service_selects({"app": "cart"}, LABELS)
    assert not service_selects({"app": "cart", "tier": "db"}, LABELS)
    assert not service_selects({}, LABELS)
    assert not service_selects(None, LABELS)


def test_an_omitted_webhook_selector_selects_everything():
    assert webhook_selects(None, LABELS)
    assert webhook_selects({}, {})
    assert not webhook_selects({"matchExpressions": [expression("app", "DoesNotExist")]}, LABELS)


def test_selectors_become_query_strings():
    assert selector_string({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [
        expression("c", "In", "x", "y"), expression("d", "NotIn", "z"),
        expression("e", "Exists"), expression("f", "DoesNotExist")]}) == \
        "a=1,b=2,c in (x,y),d notin (z),e,!f"
    assert service_selector_string({"istio.io/rev": "1-31-0", "istio": "ingressgateway"}) == \
        "istio=ingressgateway,istio.io/rev=1-31-0"


def test_an_empty_service_selector_has_no_query_form():
    with pytest.raises(ValueError, match="selects no pod"):
        service_selector_string({})
