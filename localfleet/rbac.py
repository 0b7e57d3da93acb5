"""Least-privilege RBAC for the identity that runs meshfleet, derived from what it really does.

Requests: every request an identity made at a cluster's apiserver after a marker, read from the
cluster's audit log (`audit.events`): apiGroup, resource (with its subresource), verb,
namespace and name. A request the apiserver denied (403) was not performed and is left out. A
patch or update answered `201 Created` (server-side apply of a new object) was also authorised
as `create` inside the apiserver, which the audit log does not show as a request of its own, so
it counts as a create too.

Rules: one atom per (apiGroup, resource, verb). An atom all of whose requests were in one of the
`stable` namespaces (namespaces that exist before meshfleet runs and survive its uninstall:
kube-system) goes into a Role there, with resourceNames for get/update/patch/delete when every
request named its object; every other atom goes into the ClusterRole (the layout's namespaces
are created and deleted by meshfleet itself and their names are fleet spec, so a Role in them
could neither be bound beforehand nor survive an uninstall).

Chart rules: the rules of every ClusterRole and Role that Istio's charts render (`helm template`
of base, istiod and gateway, every chart version the fleet uses). Kubernetes lets an identity
create a role, or bind one, only when it holds every permission in it (RBAC escalation
prevention), so meshfleet's identity holds these cluster-wide in a ClusterRole of their own.
"""

import json
import subprocess
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import audit, charts, gobuild, versions

STABLE_NAMESPACES = ("kube-system",)
NAMED_VERBS = ("get", "update", "patch", "delete")
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
CHARTS = ("base", "istiod", "gateway")
ROLE_KINDS = ("ClusterRole", "Role")

SERVICE_ACCOUNT = "meshfleet"
SERVICE_ACCOUNT_NAMESPACE = "meshfleet-system"
ROLE = "meshfleet"
CHARTS_ROLE = "meshfleet-istio-charts"
LABELS = {"app.kubernetes.io/name": "meshfleet", "app.kubernetes.io/part-of": "meshfleet"}
FILES = {"clusterrole": "meshfleet-clusterrole.yml", "role": "meshfleet-role.yml",
         "serviceaccount": "meshfleet-serviceaccount.yml"}


def service_account_user(name=SERVICE_ACCOUNT, namespace=SERVICE_ACCOUNT_NAMESPACE) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


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


# ------------------------------------------------------------------ rules from requests


def derive(found, stable=STABLE_NAMESPACES):
    """(cluster atoms, {namespace: {atom: resourceNames}}, {atom: clients}) of a request set."""
    by_atom = defaultdict(set)
    clients = defaultdict(set)
    for request in found:
        by_atom[request.atom].add(request)
        clients[request.atom].add(request.client)
    cluster, namespaced = {}, defaultdict(dict)
    for atom, reqs in by_atom.items():
        spaces = {r.namespace for r in reqs}
        namespace = next(iter(spaces))
        if len(spaces) == 1 and namespace in stable:
            names = {r.name for r in reqs}
            named = atom[2] in NAMED_VERBS and "" not in names
            namespaced[namespace][atom] = tuple(sorted(names)) if named else ()
        else:
            cluster[atom] = ()
    return cluster, dict(namespaced), dict(clients)


def _verb_key(verb):
    return (VERB_ORDER.index(verb), verb) if verb in VERB_ORDER else (len(VERB_ORDER), verb)


def compact(atoms: dict) -> list:
    """Rules from {(group, resource, verb): resourceNames}: one API group a rule, resources with
    the same verbs (and names) together, sorted so that regenerating gives the same text."""
    per = defaultdict(lambda: defaultdict(set))
    for (group, resource, verb), names in atoms.items():
        per[(group, tuple(names))][resource].add(verb)
    rules = []
    for (group, names) in sorted(per):
        by_verbs = defaultdict(list)
        for resource, verbs in per[(group, names)].items():
            by_verbs[tuple(sorted(verbs, key=_verb_key))].append(resource)
        for verbs, resources in sorted(by_verbs.items(), key=lambda kv: sorted(kv[1])):
            rule = {"apiGroups": [group], "resources": sorted(resources), "verbs": list(verbs)}
            if names:
                rule["resourceNames"] = list(names)
            rules.append(rule)
    return rules


def atoms_of(rules) -> dict:
    """{(group, resource, verb): resourceNames} of rules (nonResourceURLs are refused)."""
    atoms = {}
    for rule in rules:
        if rule.get("nonResourceURLs"):
            raise ValueError(f"rule with nonResourceURLs: {rule}")
        names = tuple(sorted(rule.get("resourceNames") or ()))
        for group in rule.get("apiGroups") or ():
            for resource in rule.get("resources") or ():
                for verb in rule.get("verbs") or ():
                    atoms[(group, resource, verb)] = names
    return atoms


# ------------------------------------------------------------------ RBAC matching


def _resource_matches(rule_resource, resource):
    if rule_resource in ("*", resource):
        return True
    sub = resource.partition("/")[2]
    return bool(sub) and rule_resource == f"*/{sub}"


def rule_allows(rule: dict, request: Request) -> bool:
    """Kubernetes RBAC's matching (rbac/v1 helpers: VerbMatches, APIGroupMatches,
    ResourceMatches, ResourceNameMatches) of one rule against one request."""
    groups, verbs = rule.get("apiGroups") or (), rule.get("verbs") or ()
    names = rule.get("resourceNames") or ()
    return (("*" in verbs or request.verb in verbs)
            and ("*" in groups or request.group in groups)
            and any(_resource_matches(r, request.resource) for r in rule.get("resources") or ())
            and (not names or request.name in names))


def allowed(request: Request, cluster_rules, namespaced_rules: dict) -> bool:
    """Whether a ClusterRole's rules, or a Role's in the request's namespace, allow it."""
    return (any(rule_allows(r, request) for r in cluster_rules)
            or any(rule_allows(r, request) for r in namespaced_rules.get(request.namespace, ())))


def reduce_covered(atoms: dict) -> dict:
    """Drop atoms that another atom without resourceNames already grants (wildcard resources
    or verbs)."""
    wide = [{"apiGroups": [g], "resources": [r], "verbs": [v]}
            for (g, r, v), names in atoms.items() if not names]
    return {atom: names for atom, names in atoms.items()
            if not any(rule_allows(rule, Request(*atom)) for rule in wide
                       if (rule["apiGroups"][0], rule["resources"][0], rule["verbs"][0]) != atom)}


# ------------------------------------------------------------------ the charts' own roles


def chart_files():
    """(version, chart, path) of every chart the fleet installs, every pinned Istio build."""
    return [(version, chart, charts.chart_dir(version) / f"{chart}-{version}.tgz")
            for version in sorted(versions.ISTIO_BUILDS) for chart in CHARTS]


def chart_roles(helm: Path = None, namespace="istio-system"):
    """Every (Cluster)Role the charts render with meshfleet's revisioned values:
    [(version, chart, kind, name, rules)]."""
    helm = helm or gobuild.binaries_dir() / "helm"
    found = []
    for version, chart, path in chart_files():
        revision = version.replace(".", "-")
        out = subprocess.run([str(helm), "template", chart, str(path), "-n", namespace,
                              "--set", f"revision={revision}",
                              "--set", f"global.istioNamespace={namespace}"],
                             check=True, capture_output=True, text=True).stdout
        for doc in yaml.safe_load_all(out):
            if doc and doc.get("kind") in ROLE_KINDS:
                found.append((version, chart, doc["kind"], doc["metadata"]["name"],
                              doc.get("rules") or []))
    return found


def chart_atoms(roles) -> dict:
    """The charts' permissions as atoms, each granted cluster-wide, wildcards kept."""
    atoms = {}
    for *_, rules in roles:
        for atom, names in atoms_of(rules).items():
            if atom in atoms:  # granted twice: to all names if either grant is
                names = tuple(sorted(set(names) | set(atoms[atom]))) if names and atoms[atom] else ()
            atoms[atom] = names
    return reduce_covered(atoms)


# ------------------------------------------------------------------ manifests

HEADER = """\
# Generated by `python -m localfleet rbac derive` (hack/derive-rbac regenerates it); do not edit
# by hand. Why each rule is there, and how to apply it: docs/rbac.md.
"""


def _flow(values) -> str:
    return "[" + ", ".join(json.dumps(v) if _needs_quotes(v) else v for v in values) + "]"


def _needs_quotes(value: str) -> bool:
    return (not value or not all(c.isalnum() or c in "-./" for c in value)
            or value in ("true", "false", "null", "yes", "no", "on", "off"))


def _field(key, values, indent) -> list:
    """`key: [a, b]`, or a block list when that line would be long."""
    line = f"{indent}{key}: {_flow(values)}"
    if len(line) <= 100:
        return [line]
    return [f"{indent}{key}:"] + [f"{indent}  - {_flow([v])[1:-1]}" for v in values]


def _comment(text) -> str:
    return "".join(f"# {line}\n" for line in textwrap.wrap(text, 96, break_on_hyphens=False))


def _rules_yaml(rules, comments=None) -> str:
    if not rules:
        return "rules: []\n"
    lines = ["rules:"]
    for index, rule in enumerate(rules):
        if comments and comments[index]:
            lines.append(f"  # {comments[index]}")
        first = True
        for key in ("apiGroups", "resources", "resourceNames", "verbs"):
            if key in rule:
                field = _field(key, rule[key], "    ")
                if first:
                    field[0] = "  - " + field[0][4:]
                    first = False
                lines += field
    return "\n".join(lines) + "\n"


def _metadata(name, namespace=None) -> str:
    lines = ["metadata:", f"  name: {name}"]
    if namespace:
        lines.append(f"  namespace: {namespace}")
    lines.append("  labels:")
    lines += [f"    {key}: {value}" for key, value in LABELS.items()]
    return "\n".join(lines) + "\n"


def _rule_comments(rules, clients):
    """Which clients made the requests behind each rule (helm, the modules)."""
    comments = []
    for rule in rules:
        used = set()
        for atom in atoms_of([rule]):
            used |= clients.get(atom, set())
        comments.append(", ".join(sorted(used)) or "")
    return comments


def _object(kind, name, namespace=None, api="rbac.authorization.k8s.io/v1", comment="") -> str:
    return (_comment(comment) if comment else "") + (
        f"apiVersion: {api}\nkind: {kind}\n" + _metadata(name, namespace))


def _list(header, objects) -> str:
    """One YAML document (a `kind: List`, which kubectl applies item by item, in order)."""
    text = _comment(header) + HEADER + "---\napiVersion: v1\nkind: List\nitems:\n"
    for obj in objects:
        lines = obj.rstrip("\n").split("\n")
        start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        text += "".join(f"  {line}\n" for line in lines[:start])
        text += f"  - {lines[start]}\n" + "".join(f"    {line}\n" for line in lines[start + 1:])
    return text


def manifests(cluster_atoms: dict, namespaced: dict, clients: dict, charts_atoms: dict) -> dict:
    """{file name: text} of the three manifests of rbac/, each one YAML document."""
    rules = compact(cluster_atoms)
    clusterrole = _list("What the identity that runs meshfleet may do cluster-wide.", [
        _object("ClusterRole", ROLE, comment="Every request meshfleet's playbooks made (the "
                                             "comments say which client made it).")
        + _rules_yaml(rules, _rule_comments(rules, clients)),
        _object("ClusterRole", CHARTS_ROLE, comment="The permissions of the roles Istio's charts "
                "create (istiod, gateways), held so that meshfleet can create and bind those "
                "roles without escalate or bind (RBAC escalation prevention).")
        + _rules_yaml(compact(charts_atoms))])
    roles = []
    for namespace in sorted(namespaced):
        role_rules = compact(namespaced[namespace])
        roles.append(_object("Role", ROLE, namespace)
                     + _rules_yaml(role_rules, _rule_comments(role_rules, clients)))
    role = _list("What the identity that runs meshfleet may do in namespaces that exist before "
                 "it runs.", roles)
    account = [_object("Namespace", SERVICE_ACCOUNT_NAMESPACE, api="v1"),
               _object("ServiceAccount", SERVICE_ACCOUNT, SERVICE_ACCOUNT_NAMESPACE, api="v1")]
    account += [_object("ClusterRoleBinding", name) + _binding(name, "ClusterRole")
                for name in (ROLE, CHARTS_ROLE)]
    account += [_object("RoleBinding", ROLE, namespace) + _binding(ROLE, "Role")
                for namespace in sorted(namespaced)]
    return {FILES["clusterrole"]: clusterrole, FILES["role"]: role,
            FILES["serviceaccount"]: _list(
                "The identity that runs meshfleet: a ServiceAccount bound to the roles of "
                "meshfleet-clusterrole.yml and meshfleet-role.yml.", account)}


def _binding(role, kind) -> str:
    return (f"roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: {kind}\n  name: {role}\n"
            f"subjects:\n  - kind: ServiceAccount\n    name: {SERVICE_ACCOUNT}\n"
            f"    namespace: {SERVICE_ACCOUNT_NAMESPACE}\n")


def derive_manifests(found, helm: Path = None) -> dict:
    cluster, namespaced, clients = derive(found)
    return manifests(cluster, namespaced, clients, chart_atoms(chart_roles(helm)))


def objects_in(text: str) -> list:
    """The objects of a manifest, the items of a List included."""
    objects = []
    for doc in yaml.safe_load_all(text):
        if doc:
            objects += (doc.get("items") or []) if doc.get("kind") == "List" else [doc]
    return objects


def load_manifests(directory: Path) -> list:
    """Every object of the manifests in `directory` (`*.yml`)."""
    objects = []
    for path in sorted(Path(directory).glob("*.yml")):
        objects += objects_in(path.read_text())
    return objects


def roles_of(objects):
    """(ClusterRole rules by name, Role rules by namespace) of manifest objects."""
    cluster = {o["metadata"]["name"]: o.get("rules") or [] for o in objects
               if o["kind"] == "ClusterRole"}
    namespaced = defaultdict(list)
    for obj in objects:
        if obj["kind"] == "Role":
            namespaced[obj["metadata"]["namespace"]] += obj.get("rules") or []
    return cluster, dict(namespaced)


def table(found) -> str:
    """The (apiGroup, resource, subresource, verb, namespace) set, one line each."""
    rows = sorted({r.row() for r in found})
    head = ("API GROUP", "RESOURCE", "SUBRESOURCE", "VERB", "NAMESPACE")
    widths = [max([len(head[i])] + [len(row[i] or "-") for row in rows]) for i in range(5)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join((v or "-").ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
