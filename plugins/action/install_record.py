# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Controller side of meshfleet.istio.install_record: when the task gives no `inputs`, the
digest of this host's inputs as the run sees them (every role and fleet-spec variable,
templated, and the collection's own roles, plugins and playbooks, so that a changed default or
module counts as a changed input), then the module."""

from __future__ import annotations

import hashlib
import json
import os

from ansible.plugins.action import ActionBase

PREFIXES = ("meshfleet_", "namespaces_", "istiod_", "gateways_", "mesh_config_")
# How a run goes, or what only the other playbooks and the controller jobs read: changing them
# keeps a converged cluster converged. Anything not listed counts (a variable counted by
# mistake costs one full run, one left out by mistake would hide a change).
RUN_OPTIONS = frozenset((
    "meshfleet_hosts", "meshfleet_serial", "meshfleet_max_fail_percentage", "meshfleet_lock_ttl",
    "meshfleet_break_lock", "meshfleet_force_break_lock", "meshfleet_skip_converged",
    "meshfleet_report_dir", "meshfleet_fail_on_problems", "meshfleet_health_timeout",
    "meshfleet_target_version", "meshfleet_canary_hosts", "meshfleet_canary_contexts",
    "meshfleet_canary_namespaces", "meshfleet_canary_wait", "meshfleet_canary_tag",
    "meshfleet_rollback_revision", "meshfleet_remove_crds", "meshfleet_force",
    "meshfleet_rollout_timeout", "meshfleet_prune_after", "meshfleet_migrate_batch",
    "meshfleet_max_minor_jump",
))
CONTROLLER_PREFIX = "meshfleet_controller_"
COLLECTION_PARTS = ("roles", "plugins", "playbooks")
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_collection_digest = []  # computed once per process


def collection_digest():
    if not _collection_digest:
        sha = hashlib.sha256()
        for part in COLLECTION_PARTS:
            for directory, subdirectories, files in sorted(os.walk(os.path.join(COLLECTION_ROOT, part))):
                subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__")
                for name in sorted(files):
                    if name.endswith(".pyc"):
                        continue
                    path = os.path.join(directory, name)
                    sha.update(os.path.relpath(path, COLLECTION_ROOT).encode("utf-8"))
                    with open(path, "rb") as handle:
                        sha.update(hashlib.sha256(handle.read()).digest())
        _collection_digest.append(sha.hexdigest())
    return _collection_digest[0]


def input_names(task_vars):
    return sorted(name for name in task_vars
                  if name.startswith(PREFIXES) and name not in RUN_OPTIONS
                  and not name.startswith(CONTROLLER_PREFIX))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _templated(self, value):
        try:
            return self._templar.template(value)
        except Exception as error:  # pylint: disable=broad-except
            # A variable that cannot be templated here (it needs a later task's result) counts
            # as written, with the error: the roles will fail on it or template it the same way.
            return {"untemplated": repr(value), "error": type(error).__name__}

    def inputs_digest(self, task_vars):
        values = dict((name, self._templated(task_vars[name])) for name in input_names(task_vars))
        text = json.dumps({"variables": values, "collection": collection_digest()},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        if not args.get("inputs"):
            args["inputs"] = self.inputs_digest(task_vars)
        result.update(self._execute_module(module_name="meshfleet.istio.install_record",
                                           module_args=args, task_vars=task_vars))
        return result
