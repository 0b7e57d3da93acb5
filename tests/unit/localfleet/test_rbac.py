"""Roles derived from audit events: what counts as a request, which rules they imply, RBAC's
matching, and manifests that read back as the same rules."""

import json

import yaml

from localfleet import rbac
from localfleet.rbac import Request

SA = rbac.service_account_user()


def event(verb, resource, group="", namespace="", name="", sub="", code=200, user=SA,
          agent="OpenAPI-Generator/33.1.0/python", audit_id=None, stage="ResponseComplete"):
    ref = {"resource": resource, "apiVersion": "v1"}
    for key, value in (("apiGroup", group), ("namespace", namespace), ("name", name),
                       ("subresource", sub)):
        if value:
            ref[key] = value
    return {"auditID": audit_id or f"{verb}-{resource}-{namespace}-{name}-{code}", "stage": stage,
            "verb": verb, "user": {"username": user}, "userAgent": agent, "objectRef": ref,
            "requestURI": "/x", "responseStatus": {"code": code}}


def write_log(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_requests_of_the_user_with_subresources_and_clients(tmp_path):
    log = write_log(tmp_path / "audit.log", [
        event("create", "pods", namespace="shop", name="web-1", sub="eviction"),
        event("list", "secrets", namespace="istio-system", agent="Helm/3.21.4"),
        event("list", "secrets", namespace="istio-system", user="meshfleet-admin"),
        {"auditID": "n", "stage": "ResponseComplete", "verb": "get", "user": {"username": SA},
         "requestURI": "/version"},
    ])
    assert rbac.requests(log, user=SA) == {
        Request("", "pods/eviction", "create", "shop", "web-1", "modules"),
        Request("", "secrets", "list", "istio-system", "", "helm")}


def test_denied_requests_are_left_out_and_listed_apart(tmp_path):
    log = write_log(tmp_path / "audit.log", [
        event("get", "leases", "coordination.k8s.io", "kube-system", "meshfleet-run-lock", code=403),
        event("get", "namespaces", name="shop")])
    assert rbac.requests(log, user=SA) == {Request("", "namespaces", "get", "", "shop", "modules")}
    assert [r.resource for r, _ in rbac.denied(log, user=SA)] == ["leases"]


def test_an_apply_that_created_its_object_also_needed_create(tmp_path):
    log = write_log(tmp_path / "audit.log", [
        event("patch", "configmaps", namespace="kube-system", name="meshfleet-upgrade", code=201),
        event("patch", "services", namespace="istio-gateways", name="gw", code=200)])
    verbs = {(r.resource, r.verb) for r in rbac.requests(log, user=SA)}
    assert verbs == {("configmaps", "patch"), ("configmaps", "create"), ("services", "patch")}


def test_a_watch_counts_once_whether_or_not_it_has_ended(tmp_path):
    log = write_log(tmp_path / "audit.log", [
        event("watch", "pods", namespace="shop", audit_id="w1", stage="ResponseStarted"),
        event("watch", "pods", namespace="shop", audit_id="w2", stage="ResponseStarted"),
        event("watch", "pods", namespace="shop", audit_id="w2")])
    assert len(rbac.requests(log, user=SA)) == 1


def test_markers_skip_what_came_before(tmp_path):
    log = write_log(tmp_path / "audit.log", [event("delete", "namespaces", name="old")])
    since = log.stat().st_size
    with open(log, "a") as out:
        out.write(json.dumps(event("get", "namespaces", name="new")) + "\n")
    assert {r.name for r in rbac.requests(log, since, SA)} == {"new"}


def test_stable_namespace_requests_become_a_role_with_names_for_named_verbs():
    found = {Request("coordination.k8s.io", "leases", "get", "kube-system", "meshfleet-run-lock"),
             Request("coordination.k8s.io", "leases", "create", "kube-system", ""),
             Request("", "configmaps", "get", "kube-system", "meshfleet-upgrade"),
             Request("", "configmaps", "get", "istio-system", "istio"),
             Request("", "namespaces", "list")}
    cluster, namespaced, _ = rbac.derive(found)
    assert cluster == {("", "configmaps", "get"): (), ("", "namespaces", "list"): ()}
    assert namespaced == {"kube-system": {
        ("coordination.k8s.io", "leases", "get"): ("meshfleet-run-lock",),
        ("coordination.k8s.io", "leases", "create"): ()}}


def test_compact_groups_resources_with_the_same_verbs_in_verb_order():
    atoms = {("apps", "deployments", "patch"): (), ("apps", "deployments", "get"): (),
             ("apps", "daemonsets", "get"): (), ("apps", "daemonsets", "patch"): (),
             ("apps", "replicasets", "get"): (), ("", "leases", "get"): ("lock",)}
    assert rbac.compact(atoms) == [
        {"apiGroups": [""], "resources": ["leases"], "verbs": ["get"], "resourceNames": ["lock"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments"],
         "verbs": ["get", "patch"]},
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]}]
    assert rbac.atoms_of(rbac.compact(atoms)) == atoms


def test_rbac_matching_of_wildcards_subresources_and_names():
    eviction = Request("", "pods/eviction", "create", "shop", "web-1")
    assert rbac.rule_allows({"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
                            eviction)
    assert not rbac.rule_allows({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
                                eviction)
    assert rbac.rule_allows({"apiGroups": [""], "resources": ["*/eviction"], "verbs": ["*"]},
                            eviction)
    assert rbac.rule_allows({"apiGroups": ["*"], "resources": ["*"], "verbs": ["create"]}, eviction)
    named = {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"],
             "resourceNames": ["web-2"]}
    assert not rbac.rule_allows(named, eviction)
    lease_role = {"kube-system": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                   "verbs": ["get"]}]}
    lease = Request("coordination.k8s.io", "leases", "get", "kube-system", "lock")
    assert rbac.allowed(lease, [], lease_role)
    assert not rbac.allowed(Request("coordination.k8s.io", "leases", "get", "istio-system", "x"),
                            [], lease_role)


def test_atoms_a_wildcard_grants_are_dropped():
    atoms = {("networking.istio.io", "*", "get"): (),
             ("networking.istio.io", "workloadentries", "get"): (),
             ("networking.istio.io", "workloadentries/status", "get"): (),
             ("networking.istio.io", "workloadentries", "create"): ()}
    assert rbac.reduce_covered(atoms) == {("networking.istio.io", "*", "get"): (),
                                          ("networking.istio.io", "workloadentries", "create"): ()}


def test_chart_roles_merge_into_one_set_of_cluster_wide_atoms():
    roles = [("1.31.0", "istiod", "ClusterRole", "a",
              [{"apiGroups": ["", "apps"], "resources": ["services"], "verbs": ["get", "list"]}]),
             ("1.31.0", "istiod", "Role", "b",
              [{"apiGroups": [""], "resources": ["services", "secrets"], "verbs": ["get"]}])]
    assert rbac.chart_atoms(roles) == {("", "services", "get"): (), ("", "services", "list"): (),
                                       ("apps", "services", "get"): (),
                                       ("apps", "services", "list"): (), ("", "secrets", "get"): ()}


def test_manifests_read_back_as_the_derived_rules(tmp_path):
    found = {Request("", "namespaces", "list", client="modules"),
             Request("", "secrets", "list", "istio-system", client="helm"),
             Request("", "secrets", "list", "istio-gateways", client="modules"),
             Request("coordination.k8s.io", "leases", "get", "kube-system", "lock", "modules")}
    cluster, namespaced, clients = rbac.derive(found)
    charts_atoms = {("", "*", "get"): (), ("", "pods", "list"): ()}
    files = rbac.manifests(cluster, namespaced, clients, charts_atoms)
    assert set(files) == set(rbac.FILES.values())
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert all(len(line) <= 160 for line in text.splitlines())
    assert ("      # helm, modules\n      - apiGroups: [\"\"]\n"
            "        resources: [namespaces, secrets]\n        verbs: [list]\n"
            ) in files[rbac.FILES["clusterrole"]]
    objects = rbac.load_manifests(tmp_path)
    cluster_roles, roles = rbac.roles_of(objects)
    assert rbac.atoms_of(cluster_roles[rbac.ROLE]) == cluster
    assert rbac.atoms_of(cluster_roles[rbac.CHARTS_ROLE]) == charts_atoms
    assert {ns: rbac.atoms_of(rules) for ns, rules in roles.items()} == namespaced
    bindings = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
                for o in objects if o["kind"].endswith("Binding")}
    assert bindings == {("ClusterRoleBinding", "meshfleet", None),
                        ("ClusterRoleBinding", "meshfleet-istio-charts", None),
                        ("RoleBinding", "meshfleet", "kube-system")}
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    assert SA == f"system:serviceaccount:{account['metadata']['namespace']}:{account['metadata']['name']}"
    for text in files.values():  # one YAML document each: a List kubectl applies in order
        (document,) = list(yaml.safe_load_all(text))
        assert document["kind"] == "List"
    assert [o["kind"] for o in rbac.objects_in(files[rbac.FILES["serviceaccount"]])][:2] == [
        "Namespace", "ServiceAccount"]


def test_the_table_lists_the_request_set():
    text = rbac.table({Request("", "pods/eviction", "create", "shop", "a"),
                       Request("", "pods/eviction", "create", "shop", "b")})
    assert text.splitlines()[1].split() == ["-", "pods", "eviction", "create", "shop"]
    assert len(text.splitlines()) == 2
