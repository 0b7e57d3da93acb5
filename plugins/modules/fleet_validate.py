#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_validate
short_description: Check the fleet spec and a run's variables of every cluster before any write
version_added: 0.1.0
description:
  - Checks the C(meshfleet_*) variables of every cluster of the play (inventory, group_vars,
    host_vars and extra vars) for one playbook, and fails with one message listing every
    problem of every cluster. Each problem names the cluster, the C(meshfleet_*) variable, the
    bad value and what to do.
  - Refuses, among others, versions the catalogue does not know, charts the chart source does
    not hold, a canary tag equal to the stable tag, tags shaped like revision names, system and
    Istio namespaces as application namespaces, gateway replicas and ports out of range, batch
    sizes below one, failure budgets outside 0 to 100, and values too big or too deep (such as
    a YAML alias bomb), which are refused before anything templates them.
  - Runs on the controller (an action plugin) and contacts no cluster; run it once
    (C(run_once)) at the start of a play over all clusters. See docs/fleet-spec.md for the rules.
author:
  - meshfleet contributors (@meshfleet)
attributes:
  check_mode:
    support: full
    description: Checks only.
  diff_mode:
    support: none
    description: Checks only.
options:
  playbook:
    description: The playbook whose inputs to check.
    type: str
    required: true
    choices: [install, upgrade, rollback, uninstall]
  hosts:
    description: The clusters (inventory hosts) to check; by default every host of the play.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Check every cluster's inputs before any write
  meshfleet.istio.fleet_validate:
    playbook: install
  run_once: true
"""

RETURN = r"""
problems:
  description: One message per problem (clusters sharing a problem are named together).
  returned: always
  type: list
  elements: str
  sample: ["cluster2: meshfleet_gateways[0].replicas is -1: it is the HPA's minimum ...; use a whole number from 1 to 5"]
clusters:
  description: The clusters checked.
  returned: always
  type: list
  elements: str
  sample: [cluster1, cluster2]
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            playbook=dict(type="str", required=True,
                          choices=["install", "upgrade", "rollback", "uninstall"]),
            hosts=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="meshfleet.istio.fleet_validate runs on the controller through its "
                         "action plugin; call it as a task of a play")


if __name__ == "__main__":
    main()
