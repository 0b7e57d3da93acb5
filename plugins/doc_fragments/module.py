# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment(object):
    """What every module of the collection's action group shares: its authors, its group, the
    Python it needs and the run lock its writes are made under (the playbooks set it in
    module_defaults)."""

    DOCUMENTATION = r"""
author:
  - meshfleet contributors (@meshfleet)
attributes:
  action_group:
    description: Use C(group/meshfleet.istio.istio) in C(module_defaults) to set its defaults
      (the playbooks set the kubeconfig, context and run lock this way).
    support: full
    membership:
      - meshfleet.istio.istio
requirements:
  - python >= 3.9
options:
  run_lock:
    description:
      - The cluster's run lock (Lease C(kube-system/meshfleet-run-lock)) this module's writes are
        made under. Before its first write the module takes the lock for I(holder) (or checks
        that I(holder) still holds it), and it stops, failing, as soon as the
        C(ansible-playbook) process of the run is gone, so a killed run stops writing.
      - The playbooks pass it to every module through module defaults; without it the module
        writes without the lock.
    type: dict
    suboptions:
      holder:
        description: Identity of this run.
        type: str
        required: true
      ttl:
        description: Seconds without a renewal after which the lock has expired.
        type: int
        default: 120
      fence:
        description:
          - The Lease's resourceVersion when this run first read the cluster (C('') when there
            was none). Taking the lock fails when it changed since, because another run held the
            cluster meanwhile. Without it the lock is taken whenever it is free or expired.
        type: str
      break_holder:
        description: Stale holders whose lock may be taken over.
        type: list
        elements: str
      force_break_holder:
        description: Live holders whose lock may be taken over.
        type: list
        elements: str
"""
