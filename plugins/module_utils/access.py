# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Access denials told plainly: which cluster, which identity, which permission, and where the
roles meshfleet needs are.

The apiserver's 403 text (in a Status message, or in helm's error output) has the form
`User "<user>" cannot <verb> resource "<resource>[/<subresource>]" in API group "<group>"
in the namespace "<namespace>"` (or `at the cluster scope`); a role or binding that would grant
more than its creator holds is refused with `user "<user>" (groups=[...]) is attempting to grant
RBAC permissions not currently held:` followed by the missing rules.
"""

from __future__ import annotations

import json
import re

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.meshfleet.istio.plugins.module_utils.errors import cluster_name

ROLES_HINT = ("grant it (see rbac/meshfleet-clusterrole.yml and rbac/meshfleet-role.yml of "
              "meshfleet.istio, docs/rbac.md)")
ESCALATION_HINT = ("hold them too (rbac/meshfleet-clusterrole.yml, ClusterRole "
                   "meshfleet-istio-charts, holds the permissions of the roles Istio's charts "
                   "create; docs/rbac.md)")

_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[^ ]+) resource "(?P<resource>[^"]*)" '
    r'in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)', re.I)
_NON_RESOURCE = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>[^ ]+) path "(?P<path>[^"]*)"',
                           re.I)
_ESCALATION = re.compile(
    r'(?P<what>[a-z0-9.-]+) "(?P<name>[^"]*)" is forbidden: user "(?P<user>[^"]*)" \(groups=.*?\) '
    r'is attempting to grant RBAC permissions not currently held:(?P<rules>.*)', re.S)
_MISSING_RULE = re.compile(r"\{[^{}]*\}")


def qualified(resource, group):
    """`leases.coordination.k8s.io`, `services`, `pods/eviction` (as kubectl names them)."""
    name, sub = (resource.split("/", 1) + [""])[:2]
    name = "%s.%s" % (name, group) if group else name
    return "%s/%s" % (name, sub) if sub else name


def denial(cluster, text, during=""):
    """A plain message for the first access denial in `text`, or None when there is none;
    `during` says what was being done (`helm upgrade of istio-system/istiod-1-31-0`)."""
    text = text or ""
    during = " (%s)" % during if during else ""
    found = _ESCALATION.search(text)
    if found:
        rules = [" ".join(rule.split()) for rule in _MISSING_RULE.findall(found.group("rules"))]
        return ("%s: the identity %s may not create or bind %s %s%s: it would grant permissions "
                "the identity does not hold: %s; %s"
                % (cluster, found.group("user"), found.group("what"), found.group("name"), during,
                   "; ".join(rules) or "see the apiserver's message", ESCALATION_HINT))
    found = _FORBIDDEN.search(text)
    if found:
        where = ("in namespace %s" % found.group("namespace") if found.group("namespace")
                 else "cluster-wide")
        what = qualified(found.group("resource"), found.group("group"))
    else:
        found = _NON_RESOURCE.search(text)
        if not found:
            return None
        what, where = "the path", found.group("path")
    return "%s: the identity %s may not %s %s %s%s; %s" % (
        cluster, found.group("user") or "(anonymous)", found.group("verb"), what, where, during,
        ROLES_HINT)


_POOL = re.compile(r"HTTPS?ConnectionPool\(host='(?P<host>[^']*)', port=(?P<port>\d+)\)")
_REQUEST = re.compile(r"^(?:GET|POST|PUT|PATCH|DELETE) (?P<url>https?://[^/\s]+)")
_DIAL = re.compile(r'(?:Get|Post|Put|Patch|Delete) "(?P<url>https?://[^/"]+)[^"]*": '
                   r'(?:dial tcp [^:]*(?::\d+)?: )?(?P<cause>.*)')
# Connection failures in the client's (urllib3) or helm's (Go) words, and what to call them.
_CAUSES = (
    ("connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("i/o timeout", "timed out"),
    ("name or service not known", "the host name does not resolve"),
    ("no such host", "the host name does not resolve"),
    ("temporary failure in name resolution", "the host name does not resolve"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("connection reset", "connection reset"),
    ("remote end closed connection", "the connection was closed"),
    ("certificate verify failed", "its TLS certificate is not trusted"),
    ("x509:", "its TLS certificate is not trusted"),
)
UNREACHABLE_HINT = ("check meshfleet_kubeconfig / meshfleet_context of this cluster and that its "
                    "API server is up")


def unreachable(cluster, text, server=""):
    """A plain message when `text` (a client or helm error) says the API server could not be
    reached, or None: `<cluster>: cannot reach the API server at <url> (<cause>): check ...`."""
    text = text or ""
    lowered = text.lower()
    cause = next((name for words, name in _CAUSES if words in lowered), None)
    if cause is None and not ("max retries exceeded" in lowered
                              or "kubernetes cluster unreachable" in lowered):
        return None
    pool, dial = _POOL.search(text), _DIAL.search(text) or _REQUEST.search(text)
    if pool:
        server = "https://%s:%s" % (pool.group("host"), pool.group("port"))
    elif dial:
        server = dial.group("url")
    return "%s: cannot reach the API server at %s (%s): %s" % (
        cluster, server or "the kubeconfig's server", cause or "no answer", UNREACHABLE_HINT)


def exception_text(error):
    """The message of the apiserver's Status in a client error's body, else the error's text."""
    body = getattr(error, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return str(error)
    try:
        return json.loads(body).get("message") or body
    except (ValueError, AttributeError):
        return body


class AccessModule(AnsibleK8SModule):
    """kubernetes.core's module base, failing on an access denial with `denial`'s message and on
    an API server it cannot reach with `unreachable`'s."""

    def fail_from_exception(self, exception):
        if getattr(exception, "status", None) == 403:
            message = denial(cluster_name(self.params), exception_text(exception))
            if message:
                return self.fail_json(msg=message, status=403)
        message = unreachable(cluster_name(self.params), str(exception))
        if message:
            return self.fail_json(msg=message, unreachable_cluster=True)
        return super().fail_from_exception(exception)
