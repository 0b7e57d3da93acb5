"""Per-task wall time of a playbook run, for benchmarks/upgrade.py (enable with
ANSIBLE_CALLBACK_PLUGINS=benchmarks/callback_plugins ANSIBLE_CALLBACKS_ENABLED=task_times and
set BENCH_TASK_TIMES to the JSON file to write).

A task's time runs from its start to the start of the next task (or play, or the end of the
run), i.e. the time the whole batch of hosts spent in it, as ansible.posix.profile_tasks
measures it. The per-workload durations that workload_migrate returns are kept too."""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: per-task wall time as JSON (benchmarks only)
description: Writes every task's wall time and workload_migrate's per-workload durations to $BENCH_TASK_TIMES.
requirements: [enable in configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks, self.workloads, self.current = [], [], None

    def _close(self):
        if self.current:
            self.current["seconds"] = time.monotonic() - self.current.pop("started")
            self.tasks.append(self.current)
            self.current = None

    def v2_playbook_on_play_start(self, play):
        self._close()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = {"name": task.get_name(), "action": task.action, "started": time.monotonic()}

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_runner_on_ok(self, result):
        for item in result._result.get("results", [result._result]):
            for workload in item.get("restarted") or []:
                self.workloads.append(dict(workload, host=result._host.get_name()))

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("BENCH_TASK_TIMES")
        if path:
            with open(path, "w") as out:
                json.dump({"tasks": self.tasks, "workloads": self.workloads}, out)
