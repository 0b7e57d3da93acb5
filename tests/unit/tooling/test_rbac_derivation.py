"""Roles derived from requests (hack/rbac_derivation.py): which rules they imply, RBAC's matching,
and manifests that read back as the same rules."""

import yaml

from hack import rbac_derivation as rbac
from localfleet.audit_requests import Request

SA = rbac.service_account_user()


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
