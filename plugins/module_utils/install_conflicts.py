# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""What stops an install on a cluster as it was read: every conflict at once, each with the way
out, so that one refusal names all of them before any write.

What install repairs by itself is not a conflict: a validator pointing at a missing Service (the
`default` tag's revision_tag call points it back), a deleted `default` or stable tag (created
again), a base chart rolled back to other values (upgraded again).

Pure: reads mesh_info's facts (the `mesh` it returns).
"""

from __future__ import annotations


def install_conflicts(mesh, revision, tags, kubernetes_problem="", canary=False, engine="helm"):
    """Why installing `revision` with `tags` (the default and stable tag) by `engine` (helm, or
    operator: meshfleet's IstioOperators) cannot go on.

    `canary`: the revision goes in beside the installed ones (upgrade.yml). An istioctl install
    under another revision name (or none), or a non-revisioned Helm release of istiod, is then no
    conflict: the upgrade moves its tags and workloads to the new revision."""
    found = [kubernetes_problem] if kubernetes_problem else []
    revisions = mesh.get("revisions", {})
    foreign = sorted(name for name, r in revisions.items()
                     if r.get("engine") == "operator" and not r.get("meshfleet_operator"))
    own = sorted(name for name, r in revisions.items() if r.get("meshfleet_operator"))
    others = dict((n, r) for n, r in revisions.items() if n not in own)
    if foreign:
        found.append("an IstioOperator meshfleet did not write manages the installed Istio "
                     "(revision(s) %s); meshfleet does not take over those control planes yet: "
                     "keep managing them with the operator" % ", ".join(foreign))
    elif engine == "operator":
        found += _not_meshfleets(others, revision, canary, mine="operator")
    else:
        if own and not canary:
            found.append("meshfleet's operator engine manages revision(s) %s: set "
                         "meshfleet_istio_engine: operator to keep it" % ", ".join(own))
        found += _not_meshfleets(others, revision, canary)
    for overlap in mesh.get("overlapping_webhooks", []):
        found.append("injection webhooks overlap on %s: %s; remove or neutralise all but one"
                     % (overlap["claim"], ", ".join(overlap["configurations"])))
    found += dangling_tags(mesh, revision, tags)
    return found


TAKE_OVER = ("take it over with the upgrade playbook (meshfleet_target_version: the version to "
             "run): it installs meshfleet's revision beside it, moves its tags and workloads, "
             "and removes it once nothing uses it")


def _not_meshfleets(revisions, revision, canary, mine="helm"):
    """Control planes meshfleet cannot install beside, or (outside a canary) takes over only
    through the upgrade playbook, each with the way out. `mine`: the engine of this install
    (its Helm releases are meshfleet's; with the operator engine, no Helm release is)."""
    found = []
    for name, facts in sorted(revisions.items()):
        engine = facts.get("engine")
        if mine != "helm" and engine == "helm":
            found.append("the istiod %s (Deployment %s) is a Helm release: the operator engine "
                         "does not install beside Helm; install with the Helm engine"
                         % (name, facts.get("deployment")))
            continue
        what = "%s istiod %s (Deployment %s, Istio %s)" % (
            "the non-revisioned" if name == "default" else "the", name, facts.get("deployment"),
            facts.get("version") or "of unknown version")
        if engine == "helm" and name == "default" and not canary:
            found.append("%s is a Helm release meshfleet did not install (meshfleet installs "
                         "revisioned control planes); %s" % (what, TAKE_OVER))
        elif engine != "helm" and name == revision:
            found.append("%s was installed by %s under the revision name meshfleet would "
                         "install; install another version, or uninstall it first" % (what, engine))
        elif engine != "helm" and not canary:
            found.append("%s was installed by %s, not meshfleet; %s" % (what, engine, TAKE_OVER))
    return found


def dangling_tags(mesh, revision, tags):
    """The install's tags that point at a revision neither installed nor being installed:
    install keeps a tag where it is, so it cannot repair these."""
    installed = set(mesh.get("revisions", {})) | {revision}
    return ["tag %s points at revision %s, which is not installed: move it to an installed "
            "revision (module meshfleet.istio.revision_tag, overwrite: true) or install %s first"
            % (tag, target, target)
            for tag, target in sorted(mesh.get("tags", {}).items())
            if tag in tags and target not in installed]
