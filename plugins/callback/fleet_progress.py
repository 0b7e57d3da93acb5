# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_progress
type: stdout
short_description: Ansible's default output plus each cluster's step, and a result table per cluster
version_added: 0.1.0
description:
  - Prints what the default callback prints. In addition, while tasks run, a progress block shows
    for each cluster (inventory host) the step (task) it is on, how long it has been there and,
    for steps that wait (helm C(--wait), rollouts and health gates, the canary gate, gateway
    cut-over, pauses, polled conditions), what the step waits for. The block is printed when a
    step has taken longer than O(progress_interval) seconds, and again every
    O(progress_interval) seconds while steps go on.
  - >-
    At the end of the run a table gives each cluster's result, one line per cluster -
    C(ok), C(ok, kept <revision> because <what uses it>), C(failed at <step>: <reason>),
    C(unreachable at <step>: <reason>) or C(not reached) for a cluster of the run's plays that
    no task ran on (for example the clusters after a failed canary wave).
  - Enable it with C(ANSIBLE_STDOUT_CALLBACK=meshfleet.istio.fleet_progress) or
    C(stdout_callback = meshfleet.istio.fleet_progress) in C(ansible.cfg).
author:
  - meshfleet contributors (@meshfleet)
extends_documentation_fragment:
  - ansible.builtin.default_callback
  - ansible.builtin.result_format_callback
options:
  progress_interval:
    description:
      - Seconds a step may run before the progress block is printed, and between two blocks.
      - C(0) turns the progress block off (the result table stays).
    type: float
    default: 5
    env:
      - name: MESHFLEET_PROGRESS_INTERVAL
    ini:
      - section: meshfleet_fleet_progress
        key: progress_interval
requirements:
  - set as stdout callback in configuration
"""

import threading
import time

from ansible.plugins.callback.default import CallbackModule as DefaultCallback
from ansible.template import Templar

from ansible_collections.meshfleet.istio.plugins.module_utils.fleet_order import natural_key

# What a step of this kind waits for, by the module's short name (the last part of its FQCN).
WAITS = {
    "helm_release": "helm --wait: the release's Deployments to become Ready",
    "helm": "helm --wait: the release's Deployments to become Ready",
    "workload_migrate": "restarted workloads to become Ready (rollouts, PodDisruptionBudgets, health gate)",
    "canary_gate": "the canary clusters' upgrade records to say passed (canary gate)",
    "gateway_cutover": "enough Ready gateway pods of the new revision before the cut-over",
    "revision_prune": "helm to uninstall the old revision",
    "run_lock": "the cluster's run lock",
    "pause": "the pause to end",
    "wait_for": "the condition of the task",
}
REASON_LENGTH = 240


def short_action(action):
    return (action or "").rsplit(".", 1)[-1]


def wait_of(action, args=None, retries=False):
    """What a step waits for ('' when it is not known to wait)."""
    name = short_action(action)
    if name in ("helm_release", "helm") and not (args or {}).get("wait"):
        return ""
    if name in WAITS:
        return WAITS[name]
    if retries:
        return "the task's condition (polled until it holds)"
    return ""


def first_line(text, limit=REASON_LENGTH):
    lines = [line.strip() for line in str(text or "").strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def reason_of(result):
    """The message of a failed result (its first failed item's message for a loop)."""
    for item in result.get("results") or []:
        if isinstance(item, dict) and item.get("failed"):
            return reason_of(item)
    for key in ("msg", "message", "stderr", "exception"):
        if result.get(key):
            return first_line(result[key])
    return "no message"


def format_duration(seconds):
    seconds = int(seconds)
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % divmod(seconds, 60)
    hours, rest = divmod(seconds, 3600)
    return "%dh%02dm" % (hours, rest // 60)


# The first play of every writing playbook: the input checks, made on the controller for every
# cluster before any of them is contacted.
INPUT_CHECK_PLAY = "Check the inputs of every cluster before any write"


class ClusterState(object):
    """What the callback knows about one cluster."""

    def __init__(self, name):
        self.name = name
        self.step = ""
        self.wait = ""
        self.since = None
        self.running = False
        self.started = False
        self.failure = None  # (step, reason, unreachable)
        self.kept = []  # (revision, uses)
        self.note = ""

    def start(self, step, wait, now):
        self.step, self.wait, self.since = step, wait, now
        self.running = self.started = True

    def finish(self):
        self.running = False

    def result(self, failed, unreachable):
        """The cluster's line in the result table."""
        if not self.started and not (failed or unreachable):
            return "not reached"
        if failed or unreachable:
            step, reason, was_unreachable = self.failure or (self.step, "no message", unreachable)
            return "%s at %s: %s" % ("unreachable" if was_unreachable else "failed", step, reason)
        parts = ["ok" + (" (%s)" % self.note if self.note else "")]
        for revision, uses in self.kept:
            parts.append("kept %s because it is still used by %s" % (revision, uses))
        return ", ".join(parts)


def progress_lines(clusters, now):
    """The progress block: every cluster on a step, its time there and what it waits for."""
    active = [c for c in clusters if c.running and c.since is not None]
    if not active:
        return []
    width = max(len(c.name) for c in active)
    lines = ["FLEET PROGRESS [%s] %d cluster(s) working" % (time.strftime("%H:%M:%S"), len(active))]
    for cluster in active:
        line = "  %-*s  %s (%s)" % (width, cluster.name, cluster.step,
                                    format_duration(now - cluster.since))
        if cluster.wait:
            line += " - waiting for %s" % cluster.wait
        lines.append(line)
    return lines


def result_lines(clusters, outcome):
    """The result table; `outcome` gives (failed, unreachable) for a cluster name."""
    if not clusters:
        return []
    width = max(len(c.name) for c in clusters)
    lines = ["FLEET RESULT", "  %-*s  %s" % (width, "cluster", "result")]
    for cluster in clusters:
        lines.append("  %-*s  %s" % (width, cluster.name, cluster.result(*outcome(cluster.name))))
    return lines


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "meshfleet.istio.fleet_progress"

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._clusters = {}
        self._checking_inputs = False
        self._lock = threading.RLock()
        self._last_progress = 0.0
        self._stop = threading.Event()
        self._ticker = None

    # ------------------------------------------------------------ state

    def _cluster(self, name):
        with self._lock:
            if name not in self._clusters:
                self._clusters[name] = ClusterState(name)
            return self._clusters[name]

    def _known_hosts(self, play, pattern=None):
        """The names of the hosts `pattern` (default: the play's) matches, batches ignored."""
        try:
            inventory = play._variable_manager._inventory  # pylint: disable=protected-access
            hosts = inventory.get_hosts(pattern or play.hosts, ignore_restrictions=True)
            return [host.get_name() for host in hosts]
        except Exception:  # pylint: disable=broad-except
            return []

    def v2_playbook_on_start(self, playbook):
        super(CallbackModule, self).v2_playbook_on_start(playbook)
        # Every play's clusters, so the table names the clusters a stopped run never reached.
        for play in playbook.get_plays():
            try:
                manager = play._variable_manager  # pylint: disable=protected-access
                templar = Templar(loader=playbook._loader,  # pylint: disable=protected-access
                                  variables=manager.get_vars(play=play))
                pattern = templar.template(play.hosts)
            except Exception:  # pylint: disable=broad-except
                continue
            for name in self._known_hosts(play, pattern):
                self._cluster(name)

    def v2_playbook_on_play_start(self, play):
        super(CallbackModule, self).v2_playbook_on_play_start(play)
        self._checking_inputs = play.get_name().strip() == INPUT_CHECK_PLAY
        for name in self._known_hosts(play):
            self._cluster(name)
        self._start_ticker()

    def v2_runner_on_start(self, host, task):
        super(CallbackModule, self).v2_runner_on_start(host, task)
        if self._checking_inputs:
            return  # the input checks run on the controller: no cluster is reached by them
        wait = wait_of(task.action, task.args, retries=bool(task.until))
        self._cluster(host.get_name()).start(task.get_name().strip(), wait, time.monotonic())

    def _finished(self, result):
        self._cluster(result.host.get_name()).finish()

    def _failed(self, result, unreachable=False):
        cluster = self._cluster(result.host.get_name())
        with self._lock:
            if cluster.failure is None:
                cluster.failure = (result.task.get_name().strip(), reason_of(result.result),
                                   unreachable)

    def _note_ok(self, result):
        """Revisions kept because something uses them, and the result a play publishes."""
        data = result.result
        cluster = self._cluster(result.host.get_name())
        if short_action(result.task.action) == "revision_prune" and data.get("in_use"):
            cluster.kept.append((str(data.get("item") or data.get("revision", "")),
                                 ", ".join(str(u) for u in data["in_use"])))
        published = ((data.get("ansible_stats") or {}).get("data") or {}).get("meshfleet_upgrade")
        if isinstance(published, dict) and isinstance(published.get(cluster.name), dict):
            outcome = published[cluster.name]
            note = str(outcome.get("result", ""))
            if outcome.get("from") and outcome.get("revision"):
                note += " %s -> %s" % (outcome["from"], outcome["revision"])
            elif outcome.get("revision") and note != "failed":
                note += " %s" % outcome["revision"]
            cluster.note = note.strip()

    def v2_runner_on_ok(self, result):
        super(CallbackModule, self).v2_runner_on_ok(result)
        self._note_ok(result)
        self._finished(result)

    def v2_runner_item_on_ok(self, result):
        super(CallbackModule, self).v2_runner_item_on_ok(result)
        self._note_ok(result)

    def v2_runner_item_on_failed(self, result):
        super(CallbackModule, self).v2_runner_item_on_failed(result)
        self._failed(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        super(CallbackModule, self).v2_runner_on_failed(result, ignore_errors=ignore_errors)
        if not ignore_errors:
            self._failed(result)
        self._finished(result)

    def v2_runner_on_unreachable(self, result):
        super(CallbackModule, self).v2_runner_on_unreachable(result)
        self._failed(result, unreachable=True)
        self._finished(result)

    def v2_runner_on_skipped(self, result):
        super(CallbackModule, self).v2_runner_on_skipped(result)
        self._finished(result)

    # ------------------------------------------------------------ output

    def _interval(self):
        try:
            return float(self.get_option("progress_interval"))
        except (KeyError, TypeError, ValueError):
            return 5.0

    def _start_ticker(self):
        if self._ticker is not None or self._interval() <= 0:
            return
        self._ticker = threading.Thread(target=self._tick, name="fleet-progress", daemon=True)
        self._ticker.start()

    def _tick(self):
        interval = self._interval()
        while not self._stop.wait(min(1.0, interval)):
            now = time.monotonic()
            with self._lock:
                clusters = sorted(self._clusters.values(), key=lambda c: natural_key(c.name))
                due = any(c.running and c.since is not None and now - c.since >= interval
                          for c in clusters) and now - self._last_progress >= interval
                if due:
                    self._last_progress = now
                    for line in progress_lines(clusters, now):
                        self._display.display(line)

    def v2_playbook_on_stats(self, stats):
        self._stop.set()
        super(CallbackModule, self).v2_playbook_on_stats(stats)

        def outcome(name):
            summary = stats.summarize(name)
            return bool(summary.get("failures")), bool(summary.get("unreachable"))

        with self._lock:
            clusters = sorted(self._clusters.values(), key=lambda c: natural_key(c.name))
            lines = result_lines(clusters, outcome)
        if lines:
            self._display.banner("FLEET RESULT")
            for line in lines[1:]:
                self._display.display(line)
