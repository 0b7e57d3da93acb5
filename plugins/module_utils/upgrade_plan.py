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
         max_minors=1):
    """Refusals first, then the steps of moving this cluster to `target_version`."""
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
    steps = _steps(snapshot, target, stable_tag, canary_tag)
    return {
        "current_revision": current, "current_version": current_version,
        "target_revision": target, "target_version": facts["version"], "minor_jump": jump,
        "old_revisions": sorted(r for r in snapshot.revisions if r != target),
        "steps": steps, "pending": [s["name"] for s in steps if s["state"] == "pending"],
        "needs_a_hand": [s["detail"] for s in steps if s["state"] == "needs_a_hand"],
    }


MOVABLE_OWNERS = ("ReplicaSet", "StatefulSet", "DaemonSet")


def unmovable_pods(snapshot, revision):
    """Pods that use `revision` (the in-use rule) and that no rollout can move (bare pods, Jobs):
    they need a hand."""
    return ["%s/%s (%s)" % (ref_of(pod) + (owner_kind(pod),))
            for pod in using_pods(snapshot, revision) if owner_kind(pod) not in MOVABLE_OWNERS]


def _steps(snapshot, target, stable_tag, canary_tag):
    revision = snapshot.revisions.get(target)
    kinds = sorted({g["kind"] for g in snapshot.gateways()})
    target_kinds = {g["kind"] for g in snapshot.gateways()
                    if g["revision"] == target and g["ready_replicas"] >= 1}
    movable = [p for p in snapshot.injected_pods()
               if p["revision"] != target and p["owner"] in MOVABLE_OWNERS]
    services = snapshot.gateway_services()
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
        _step("migrate_workloads", not movable,
              "%d movable pod(s) on older revisions" % len(movable)),
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
