# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""workload_migrate: the namespaces relabelled to a tag, then their workloads replaced batch by
batch (`run_batches`, with an injectable clock), and the module's result."""

from __future__ import annotations

import time

from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import (
    INJECTION_LABEL,
    REV_LABEL,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import labels_of, meta_of
from ansible_collections.meshfleet.istio.plugins.module_utils.revisions import check_revision_name
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_plan import (
    MigrationError,
    count_revisions,
    not_moved,
    plan_namespace,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.workload_replacement import (
    SKIPPED,
    TIMED_OUT,
    replacement_for,
)

POLL_SECONDS = 1.0


# ---------------------------------------------------------------- the options, the tag, the namespaces

def check_options(params):
    check_revision_name(params["tag"])
    if not params["namespaces"]:
        raise MigrationError("namespaces is empty: name at least one namespace to move")
    if params["istio_namespace"] in params["namespaces"]:
        raise MigrationError("namespace %s holds the control planes and is never enrolled for "
                             "injection: leave it out of namespaces" % params["istio_namespace"])
    for name in ("batch_size", "timeout"):
        if params[name] < 1:
            raise MigrationError("%s must be at least 1, not %d" % (name, params[name]))


def target_revision(snapshot, tag):
    """The installed, Ready revision `tag` selects (a revision name selects itself)."""
    revision = snapshot.resolve(tag)
    installed = ", ".join(snapshot.revision_names()) or "none"
    if revision not in snapshot.revisions:
        if tag in snapshot.tags:
            raise MigrationError(
                "tag %r points at revision %s, which is not installed (installed: %s); point the "
                "tag at an installed revision first (meshfleet.istio.revision_tag)"
                % (tag, revision, installed))
        raise MigrationError(
            "%r is neither a revision tag nor an installed revision (tags: %s; revisions: %s)"
            % (tag, ", ".join(sorted(snapshot.tags)) or "none", installed))
    info = snapshot.revisions[revision]
    if not info["ready"]:
        raise MigrationError(
            "revision %s%s is installed but not Ready (%d of %d replicas of Deployment %s/%s "
            "ready): restarted pods could not be injected; wait until it is Ready"
            % (revision, "" if revision == tag else " (tag %s)" % tag, info["ready_replicas"],
               info["replicas"], snapshot.istio_namespace, info["deployment"]))
    return revision


def relabel_patch(namespace, tag):
    """The merge patch that makes the namespace select `tag`, or None when it already does."""
    labels = labels_of(namespace)
    if labels.get(REV_LABEL) == tag and INJECTION_LABEL not in labels:
        return None
    patch = {REV_LABEL: tag}
    if INJECTION_LABEL in labels:
        patch[INJECTION_LABEL] = None
    return {"metadata": {"labels": patch}}


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_batches(replacements, batch_size, stop_on_timeout, clock=time.monotonic,
                sleep=time.sleep, poll=POLL_SECONDS):
    """Start `batch_size` replacements at once and wait until each has finished or timed out
    before the next batch. With `stop_on_timeout`, a timeout skips every later batch."""
    stopped_by = None
    for batch in chunks(replacements, batch_size):
        if stopped_by:
            for replacement in batch:
                replacement.skip(stopped_by)
            continue
        for replacement in batch:
            replacement.start(clock())
        while True:
            now = clock()
            for replacement in batch:
                replacement.step(now)
            if not any(r.running for r in batch):
                break
            sleep(poll)
        timed_out = [r.move.ref for r in batch if r.state == TIMED_OUT]
        if timed_out and stop_on_timeout:
            stopped_by = ", ".join(timed_out)


# ---------------------------------------------------------------- results

def moved_entry(replacement):
    move = replacement.move
    return {"namespace": move.namespace, "kind": move.kind, "name": move.name,
            "method": move.method, "method_reason": move.why,
            "from_revisions": count_revisions(move.pods), "duration": replacement.duration,
            "pods_evicted": replacement.evicted, "evictions_refused": replacement.refused}


def outcome_entry(replacement):
    """None when the workload moved; else its not-moved entry."""
    move = replacement.move
    if replacement.state == TIMED_OUT:
        entry = not_moved(move.namespace, move.kind, move.name, move.pods, "timeout",
                          "not finished after %ds (%s)" % (replacement.timeout,
                                                           describe_progress(replacement.progress)))
    elif replacement.state == SKIPPED:
        entry = not_moved(move.namespace, move.kind, move.name, move.pods, "skipped",
                          "not started: %s timed out in an earlier batch"
                          % replacement.skipped_because)
    elif set(replacement.revisions_after) - {replacement.revision}:
        entry = not_moved(move.namespace, move.kind, move.name, move.pods, "still-stale",
                          "replaced, but its new pods run %s: its pod template pins another "
                          "revision or disables injection"
                          % ", ".join(sorted(set(replacement.revisions_after)
                                             - {replacement.revision})))
    else:
        return None
    entry.update(method=move.method, progress=dict(replacement.progress),
                 duration=replacement.duration)
    return entry


def describe_progress(progress):
    return ", ".join("%s %s" % (key, value) for key, value in sorted(progress.items())) or "no status"


def describe_revisions(counts):
    return ", ".join("%s (%d pods)" % item for item in sorted(counts.items()))


def workload_diff(moves, revision):
    """A diff entry listing the workloads restarted, with the revisions they run before/after."""
    before = "".join("%s: %s\n" % (m.ref, describe_revisions(count_revisions(m.pods)))
                     for m in moves)
    after = "".join("%s: %s (%s)\n" % (m.ref, revision, m.method) for m in moves)
    return {"before": before, "after": after, "before_header": "workloads",
            "after_header": "workloads"}


# ---------------------------------------------------------------- the whole migration

def existing_namespaces(api, names):
    """The namespaces, read; refuses before any write when one is missing."""
    found = [(name, api.namespace(name)) for name in names]
    missing = [name for name, obj in found if obj is None]
    if missing:
        raise MigrationError("namespace(s) %s do not exist: create them or leave them out of "
                             "namespaces" % ", ".join(missing))
    return [obj for _name, obj in found]


def relabel_namespaces(api, changes, namespaces, tag):
    """Make each namespace select `tag`; returns the names relabelled (or, in check mode, that
    would be)."""
    relabelled = []
    for namespace in namespaces:
        patch = relabel_patch(namespace, tag)
        if patch is None:
            continue
        name = meta_of(namespace)["name"]
        changes.record(True, namespace, api.relabel(name, patch), "Namespace/%s" % name)
        relabelled.append(name)
    return relabelled


def plan(api, names, revision):
    moves, stuck = [], []
    for name in names:
        found, blocked = plan_namespace(name, api.namespace_objects(name), revision)
        moves.extend(found)
        stuck.extend(blocked)
    return moves, stuck


def migrate(api, changes, params, check_mode, clock=time.monotonic, sleep=time.sleep,
            poll=POLL_SECONDS):
    """Relabel the namespaces, then replace the workloads batch by batch (in check mode: only
    predict). Returns the module's result fields besides changed/objects/diff."""
    names = list(dict.fromkeys(params["namespaces"]))
    namespaces = existing_namespaces(api, names)
    revision = params["revision"]
    relabelled = relabel_namespaces(api, changes, namespaces, params["tag"])
    moves, stuck = plan(api, names, revision)
    replacements = [replacement_for(api, move, revision, params["timeout"]) for move in moves]
    if check_mode:
        started = replacements
    else:
        run_batches(replacements, params["batch_size"], params["fail_on_timeout"], clock, sleep,
                    poll)
        started = [r for r in replacements if r.wrote]
    if started:
        changes.changed_objects.extend(r.move.ref for r in started)
        changes.diffs.append(workload_diff([r.move for r in started], revision))
    outcomes = [(r, None if check_mode else outcome_entry(r)) for r in replacements]
    return {"tag": params["tag"], "revision": revision, "relabelled": relabelled,
            "restarted": [moved_entry(r) for r, entry in outcomes if entry is None],
            "not_moved": stuck + [entry for _r, entry in outcomes if entry is not None],
            "timed_out": [r.move.ref for r in replacements if r.state == TIMED_OUT]}
