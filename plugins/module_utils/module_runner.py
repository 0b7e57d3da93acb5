# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The one way a meshfleet module runs: connect, do the work, exit with its result, or fail with
a MeshfleetError's message and partial result (anything else: kubernetes.core's failure, with
the traceback)."""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import Cluster


def run_module(module, work, connect=Cluster):
    """Exit `module` with `work(module, connect(module))`, or `work(module)` when `connect` is
    None (a module that reaches its clusters itself). Check mode reaches the work and the
    cluster through `module.check_mode`."""
    try:
        result = work(module, connect(module)) if connect else work(module)
    except MeshfleetError as error:
        module.fail_json(msg=error.message(module.params), **error.result)
    except Exception as error:  # pylint: disable=broad-except
        if not hasattr(module, "fail_from_exception"):  # a plain AnsibleModule: its traceback
            raise
        module.fail_from_exception(error)
    module.exit_json(**result)
