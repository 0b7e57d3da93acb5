# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The canary upgrade of one cluster as ordered steps, each marked done or pending from the
cluster's own state, so a rerun after any failure resumes where the cluster really is.

Pure logic over a MeshSnapshot; refusals come before anything is written.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils import catalogue
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import ref_of
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import owner_kind
from ansible_collections.meshfleet.istio.plugins.module_utils.revision_usage import using_pods
from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import (
    IstioVersion,
    VersionError,
    check_revision_name,
    check_upgrade_jump,
    revision_name,
)


class PlanError(VersionError):
    """An upgrade meshfleet refuses, with the reason and the way out."""


def current_revision(snapshot, stable_tag):
    """The revision that serves the cluster now: the stable tag's, else default's, else the
    only installed one."""
    for tag in (stable_tag, "default"):
        if tag in snapshot.tags:
            return snapshot.tags[tag]
    if len(snapshot.revisions) == 1:
        return next(iter(snapshot.revisions))
    return None


def revision_version(snapshot, revision):
    version = snapshot.revisions.get(revision, {}).get("version", "")
    if not version:
        raise PlanError("revision %s has no version label (app.kubernetes.io/version); "
                        "meshfleet cannot tell how far the upgrade jumps" % revision)
    return version


def check_data_plane(snapshot, target):
    """No proxy may end up newer than its control plane: refuse when pods run a revision
    newer than the target."""
    ahead = []
    for revision, count in sorted(snapshot.pods_by_revision().items()):
        version = snapshot.revisions.get(revision, {}).get("version")
        if version and IstioVersion(target) < IstioVersion(version):
            ahead.append("%d pod(s) on %s (%s)" % (count, revision, version))
    if ahead:
        raise PlanError("the data plane would end up ahead of the control plane %s: %s; "
                        "upgrade to at least their version" % (target, ", ".join(ahead)))


def check_tag_names(snapshot, target, tags):
    for tag in tags:
        check_revision_name(tag)
        if tag in snapshot.revisions or tag == target:
            raise PlanError("tag %r has the name of an installed revision or of the target "
                            "revision; choose another tag name" % tag)


def plan(snapshot, target_version, stable_tag="prod-stable", canary_tag="prod-canary",
         max_minors=1, canary_namespaces=(), gateway_names=()):
    """Refusals first, then the steps of moving this cluster to `target_version` and what they
    act on: the namespaces whose workloads move, the stable gateway Services to cut over and
    the revisions to prune."""
    facts = catalogue.check_kubernetes(target_version, snapshot.raw["kubernetes_version"])
    target = revision_name(target_version)
    check_tag_names(snapshot, target, (stable_tag, canary_tag))
    current = current_revision(snapshot, stable_tag)
    if current is None:
        raise PlanError("no Istio revision is installed; install %s with the install playbook"
                        % target_version)
    current_version = revision_version(snapshot, current)
    jump = 0 if current == target else check_upgrade_jump(current_version, target_version,
                                                          max_minors)
    check_data_plane(snapshot, target_version)
    old = sorted(r for r in snapshot.revisions if r != target)
    namespaces = namespaces_to_migrate(snapshot, (stable_tag, canary_tag) + tuple(old),
                                       canary_namespaces)
    services = services_to_cut_over(snapshot, gateway_names)
    steps = _steps(snapshot, target, stable_tag, canary_tag, namespaces, services)
    return {
        "current_revision": current, "current_version": current_version,
        "target_revision": target, "target_version": facts["version"], "minor_jump": jump,
        "old_revisions": old, "migrate_namespaces": namespaces,
        "gateway_services": [{"name": s["name"], "namespace": s["namespace"]} for s in services],
        "steps": steps, "pending": [s["name"] for s in steps if s["state"] == "pending"],
        "needs_a_hand": [s["detail"] for s in steps if s["state"] == "needs_a_hand"],
    }


def namespaces_to_migrate(snapshot, labels, canary_namespaces=()):
    """Namespaces whose workloads move to the stable tag: those whose istio.io/rev is one of
    `labels` (the stable and canary tags, the old revisions), those on istio-injection=enabled
    (the label goes: it would win over the tag), and the canary namespaces that exist. Any other
    istio-injection value turns injection off whatever istio.io/rev says (every injector
    requires the label absent), so such a namespace is left alone."""
    found = snapshot.namespaces()
    names = {ns["name"] for ns in found
             if ns["injection_label"] == "enabled"
             or (ns["rev_label"] in labels and ns["injection_label"] is None)}
    names |= set(canary_namespaces) & {ns["name"] for ns in found}
    return sorted(names)


def services_to_cut_over(snapshot, gateway_names=()):
    """meshfleet's stable gateway Services, and the hand-made ones named like a gateway of the
    spec that serve an installed revision (the gateways step adopts them before it changes any
    gateway)."""
    adopted = [s for s in snapshot.hand_made_gateway_services()
               if s["name"] in gateway_names and s["serving_revision"] in snapshot.revisions]
    return snapshot.gateway_services() + adopted


def namespaces_to_relabel(snapshot, namespaces, stable_tag):
    """Those of `namespaces` not yet labelled with the stable tag alone."""
    return [ns["name"] for ns in snapshot.namespaces() if ns["name"] in namespaces
            and (ns["rev_label"] != stable_tag or ns["injection_label"] is not None)]


MOVABLE_OWNERS = ("ReplicaSet", "StatefulSet", "DaemonSet")


def unmovable_pods(snapshot, revision):
    """Pods that use `revision` (the in-use rule) and that no rollout can move (bare pods, Jobs):
    they need a hand."""
    return ["%s/%s (%s)" % (ref_of(pod) + (owner_kind(pod),))
            for pod in using_pods(snapshot, revision) if owner_kind(pod) not in MOVABLE_OWNERS]


def _steps(snapshot, target, stable_tag, canary_tag, namespaces, services):
    revision = snapshot.revisions.get(target)
    kinds = sorted({g["kind"] for g in snapshot.gateways()})
    target_kinds = {g["kind"] for g in snapshot.gateways()
                    if g["revision"] == target and g["ready_replicas"] >= 1}
    movable = [p for p in snapshot.injected_pods()
               if p["revision"] != target and p["owner"] in MOVABLE_OWNERS]
    relabel = namespaces_to_relabel(snapshot, namespaces, stable_tag)
    old = sorted(r for r in snapshot.revisions if r != target)
    blockers = [pod for r in old for pod in unmovable_pods(snapshot, r)]
    ready = bool(revision and revision["ready"])
    return [
        _step("install_revision", ready,
              "istiod-%s %s" % (target, "ready" if ready else "missing or not ready")),
        _step("install_gateways", target_kinds >= set(kinds),
              "%d of %d gateway kinds ready on %s" % (len(target_kinds), len(kinds), target)),
        _step("canary_tag", target in (snapshot.tags.get(canary_tag), snapshot.tags.get(stable_tag)),
              "%s -> %s" % (canary_tag, snapshot.tags.get(canary_tag))),
        _step("promote", snapshot.tags.get(stable_tag) == target
              and snapshot.tags.get("default") == target,
              "%s -> %s, default -> %s" % (stable_tag, snapshot.tags.get(stable_tag),
                                           snapshot.tags.get("default"))),
        _step("migrate_workloads", not (movable or relabel),
              "%d movable pod(s) on older revisions, %d namespace(s) to label %s"
              % (len(movable), len(relabel), stable_tag)),
        _step("cutover_gateways", all(s["serving_revision"] == target for s in services),
              ", ".join("%s -> %s" % (s["name"], s["serving_revision"]) for s in services)),
        _step("prune", not old, "installed: %s" % ", ".join(sorted(snapshot.revisions)),
              blocked_by=blockers),
    ]


def _step(name, done, detail, blocked_by=()):
    state = "done" if done else ("needs_a_hand" if blocked_by else "pending")
    step = {"name": name, "done": bool(done), "state": state, "detail": detail}
    if blocked_by and not done:
        step["detail"] += "; still used by %s" % ", ".join(blocked_by)
    return step
