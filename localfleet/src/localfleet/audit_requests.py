"""What an identity asked of a cluster's apiserver, read from the cluster's audit log.

Requests: every request an identity made at a cluster's apiserver after a marker, read from the
cluster's audit log (`audit.events`): apiGroup, resource (with its subresource), verb,
namespace and name. A request the apiserver denied (403) was not performed and is left out. A
patch or update answered `201 Created` (server-side apply of a new object) was also authorised
as `create` inside the apiserver, which the audit log does not show as a request of its own, so
it counts as a create too.
"""

from dataclasses import dataclass
from pathlib import Path

from . import audit


@dataclass(frozen=True, order=True)
class Request:
    """One request as RBAC sees it; `resource` carries the subresource (`pods/eviction`)."""

    group: str
    resource: str
    verb: str
    namespace: str = ""
    name: str = ""
    client: str = ""

    @property
    def atom(self):
        return (self.group, self.resource, self.verb)

    def row(self):
        resource, _, subresource = self.resource.partition("/")
        return (self.group, resource, subresource, self.verb, self.namespace)


def client_of(user_agent: str) -> str:
    """helm, or the meshfleet modules (their own REST client, or the Kubernetes Python client
    some of kubernetes.core's modules and auth forms use), or the agent itself."""
    if user_agent.startswith("Helm/"):
        return "helm"
    if "python" in user_agent.lower():
        return "modules"
    return user_agent.split("/", 1)[0] or "unknown"


def request_of(event: dict):
    """The request of an audit event, or None for a non-resource request."""
    ref = event.get("objectRef")
    if not ref or not ref.get("resource"):
        return None
    resource = "/".join(p for p in (ref["resource"], ref.get("subresource")) if p)
    return Request(ref.get("apiGroup", ""), resource, event.get("verb", ""),
                   ref.get("namespace", ""), ref.get("name", ""),
                   client_of(event.get("userAgent", "")))


def code_of(event: dict):
    return (event.get("responseStatus") or {}).get("code")


def user_events(log: Path, since: int = 0, user: str = None) -> dict:
    """The latest event of each request (by audit ID) acting as `user` after `since`: a watch
    has a ResponseStarted event long before its ResponseComplete."""
    latest = {}
    for event in audit.events(log, since):
        if user is None or audit.acting_user(event) == user:
            latest[event.get("auditID")] = event
    return latest


def requests(log: Path, since: int = 0, user: str = None) -> set:
    """What `user` did after `since`: allowed requests, and the creates that applies implied."""
    found = set()
    for event in user_events(log, since, user).values():
        request = request_of(event)
        if request is None or code_of(event) == 403:
            continue
        found.add(request)
        if request.verb in ("patch", "update") and code_of(event) == 201:
            found.add(Request(request.group, request.resource, "create", request.namespace,
                              request.name, request.client))
    return found


def denied(log: Path, since: int = 0, user: str = None) -> list:
    """The requests of `user` after `since` that the apiserver refused (403), with its message."""
    return [(request_of(e), (e.get("responseStatus") or {}).get("message", ""))
            for e in user_events(log, since, user).values()
            if code_of(e) == 403 and request_of(e) is not None]


def fleet_requests(fleet, since: dict, user: str) -> set:
    """The union over the fleet's clusters; `since` maps cluster names to markers."""
    found = set()
    for cluster in fleet.clusters:
        found |= requests(cluster.audit_log, since.get(cluster.spec.name, 0), user)
    return found


def mark_fleet(fleet) -> dict:
    return {c.spec.name: audit.mark(c.audit_log) for c in fleet.clusters}


def table(found) -> str:
    """The (apiGroup, resource, subresource, verb, namespace) set, one line each."""
    rows = sorted({r.row() for r in found})
    head = ("API GROUP", "RESOURCE", "SUBRESOURCE", "VERB", "NAMESPACE")
    widths = [max([len(head[i])] + [len(row[i] or "-") for row in rows]) for i in range(5)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join((v or "-").ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
