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


def install_conflicts(mesh, revision, tags, kubernetes_problem=""):
    """Why installing `revision` with `tags` (the default and stable tag) cannot go on."""
    found = [kubernetes_problem] if kubernetes_problem else []
    engine = mesh.get("engine", "none")
    if engine not in ("none", "helm"):
        found.append("the installed Istio is managed by %s; migrate it with the upgrade playbook"
                     % engine)
    if "default" in mesh.get("revisions", {}):
        found.append("a non-revisioned istiod (Deployment istiod) is installed; meshfleet installs "
                     "revisioned control planes only")
    for overlap in mesh.get("overlapping_webhooks", []):
        found.append("injection webhooks overlap on %s: %s; remove or neutralise all but one"
                     % (overlap["claim"], ", ".join(overlap["configurations"])))
    found += dangling_tags(mesh, revision, tags)
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
