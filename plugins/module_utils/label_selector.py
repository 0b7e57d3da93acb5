# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Label selectors with Kubernetes' own semantics, in their three forms:

* a LabelSelector (matchLabels, matchExpressions: PodDisruptionBudgets, Deployments), read as
  apimachinery's LabelSelectorAsSelector reads it: a null selector selects nothing, an empty
  one everything;
* a Service's plain map spec.selector: an empty or missing map selects no pod (Kubernetes
  manages no endpoints for such a Service);
* a webhook's namespaceSelector and objectSelector: omitted means {}, which selects everything.

Each caller picks its form explicitly.
"""

from __future__ import annotations

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def check_operator(expression):
    """Refuse an operator Kubernetes rejects, rather than guess whether it matches."""
    if expression.get("operator") not in OPERATORS:
        raise ValueError("label selector operator %r of key %r is not one of %s: Kubernetes "
                         "rejects such a selector" % (expression.get("operator"),
                                                      expression.get("key"), ", ".join(OPERATORS)))


def expression_holds(expression, labels):
    check_operator(expression)
    key, operator = expression.get("key"), expression["operator"]
    values = expression.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    return key not in labels


def selector_matches(selector, labels):
    """Whether a LabelSelector selects `labels`: None selects nothing, {} everything."""
    if selector is None:
        return False
    expressions = selector.get("matchExpressions") or []
    for expression in expressions:
        check_operator(expression)
    return (all(labels.get(key) == value
                for key, value in (selector.get("matchLabels") or {}).items())
            and all(expression_holds(expression, labels) for expression in expressions))


def service_selects(selector, labels):
    """Whether a Service's spec.selector (a plain map) selects a pod with `labels`; an empty or
    missing selector selects none."""
    if not selector:
        return False
    return all(labels.get(key) == value for key, value in selector.items())


def webhook_selects(selector, labels):
    """Whether a webhook's namespaceSelector or objectSelector selects `labels`; an omitted
    selector is {} (the apiserver defaults it so) and selects everything."""
    return selector_matches({} if selector is None else selector, labels)


def selector_string(selector):
    """A LabelSelector in the `labelSelector` query syntax of LIST requests. A query cannot say
    "nothing": callers must not pass a null selector."""
    parts = ["%s=%s" % item for item in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        check_operator(expression)
        key, values = expression["key"], ",".join(expression.get("values") or [])
        parts.append({"In": "%s in (%s)" % (key, values),
                      "NotIn": "%s notin (%s)" % (key, values),
                      "Exists": key,
                      "DoesNotExist": "!%s" % key}[expression["operator"]])
    return ",".join(parts)


def service_selector_string(selector):
    """A Service's spec.selector in the query syntax. An empty map selects no pod, which no query
    can say (an empty query lists every pod), so it is refused."""
    if not selector:
        raise ValueError("an empty Service selector selects no pod and has no query form")
    return selector_string({"matchLabels": selector})
