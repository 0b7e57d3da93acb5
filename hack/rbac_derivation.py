"""Least-privilege RBAC for the identity that runs meshfleet (rbac/), derived from what it really
did at the local fleet's apiservers (localfleet.audit_requests; hack/derive-rbac runs the scenario
and then this).

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

    .venv/bin/python hack/rbac_derivation.py [--fleet F] [--since MARKS] [--user U] [--write rbac]
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import yaml

from localfleet import charts, gobuild, versions
from localfleet.audit_requests import Request, fleet_requests, table
from localfleet.fleet import DEFAULT_FLEET, Fleet

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
# Generated by hack/rbac_derivation.py (hack/derive-rbac regenerates it); do not edit
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


def parse(argv):
    parser = argparse.ArgumentParser(prog="rbac_derivation", description=__doc__.split("\n")[0])
    parser.add_argument("--fleet", default=os.environ.get("MESHFLEET_FLEET", DEFAULT_FLEET),
                        help="fleet name (default: $MESHFLEET_FLEET or 'default')")
    parser.add_argument("--since", type=Path,
                        help="a file written from 'localfleet requests mark' (default: the whole "
                             "logs)")
    parser.add_argument("--user", default=service_account_user(),
                        help="the identity as the audit log names it (default: %(default)s)")
    parser.add_argument("--write", type=Path, metavar="DIR",
                        help="write the manifests into DIR (e.g. rbac) instead of printing them")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    fleet = Fleet(args.fleet)
    if not fleet.clusters:
        print(f"rbac_derivation: fleet {fleet.name} is not running", file=sys.stderr)
        return 1
    since = json.loads(args.since.read_text()) if args.since else {}
    found = fleet_requests(fleet, since, args.user)
    if not found:
        print(f"rbac_derivation: no request by {args.user} in the audit logs of fleet "
              f"{fleet.name}" + (f" since the markers of {args.since}" if args.since else ""),
              file=sys.stderr)
        return 1
    print(table(found))
    for name, text in derive_manifests(found).items():
        if args.write:
            args.write.mkdir(parents=True, exist_ok=True)
            (args.write / name).write_text(text)
            print(f"wrote {args.write / name}", file=sys.stderr)
        else:
            print(f"\n# {name}\n{text}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
