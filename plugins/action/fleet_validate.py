# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Controller side of meshfleet.istio.fleet_validate: reads every cluster's meshfleet_*
variables as the inventory and the extra vars give them (untemplated), refuses values too big
or too deep before anything templates them, templates the rest in that cluster's own context
and checks them all (module_utils/fleet_validation.py). Contacts no cluster."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.meshfleet.istio.plugins.module_utils.fleet_validation import (
    CHECKED,
    PLAYBOOKS,
    Problems,
    oversized,
    validate,
)

PREFIX = "meshfleet_"
ROLE_LIMITS = ("gateways_autoscale_max",)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("playbook", "hosts"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        playbook = self._task.args.get("playbook")
        if playbook not in PLAYBOOKS:
            return dict(result, failed=True,
                        msg="playbook %r: use one of %s" % (playbook, ", ".join(PLAYBOOKS)))
        hosts = self._task.args.get("hosts") or task_vars.get("ansible_play_hosts_all") or []
        hostvars = task_vars["hostvars"]
        early = Problems()
        clusters, limits = {}, {}
        for host in hosts:
            raw = hostvars.raw_get(host)
            templar = self._templar.copy_with_new_env(available_variables=raw)
            values = {}
            for name in sorted(n for n in raw if n.startswith(PREFIX) or n in ROLE_LIMITS):
                if name not in CHECKED and name not in ROLE_LIMITS:
                    # not evaluated (it may need the playbook's variables), only bounded
                    why = oversized(raw[name])
                    if why is not None:
                        early.add(host, TOO_LARGE % (name, why))
                    continue
                value = self._value(host, name, raw[name], templar, early)
                if value is _REFUSED:
                    continue
                if name in ROLE_LIMITS:
                    limits[host] = value
                else:
                    values[name] = value
            clusters[host] = values
        messages = early.messages() + validate(playbook, clusters, autoscale_max=limits)
        result.update(changed=False, problems=messages, clusters=list(clusters))
        if messages:
            result.update(failed=True, msg=(
                "%d problem(s) in the fleet spec or this run's variables; nothing was changed on "
                "any cluster:\n- %s" % (len(messages), "\n- ".join(messages))))
        else:
            result["msg"] = "the inputs of %d cluster(s) are fine" % len(clusters)
        return result

    @staticmethod
    def _value(host, name, raw, templar, problems):
        why = oversized(raw)
        if why is None:
            try:
                value = templar.template(raw)
            except AnsibleError as error:
                problems.add(host, "%s cannot be evaluated: %s; correct the expression"
                             % (name, str(error).splitlines()[0]))
                return _REFUSED
            why = oversized(value)
        if why is not None:
            problems.add(host, TOO_LARGE % (name, why))
            return _REFUSED
        return value


_REFUSED = object()
TOO_LARGE = ("%s is too large for a fleet spec value: %s; write it out without YAML aliases, or "
             "keep only the values that differ from the chart's defaults")
