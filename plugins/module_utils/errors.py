# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The root of the failures meshfleet explains to its users (module_runner.py fails a module
with them): a message that says what to change, and the result fields of what was done or found
before the failure."""

from __future__ import annotations


def cluster_name(params):
    """How messages name the cluster: the kubeconfig context the task uses."""
    return (params or {}).get("context") or "the kubeconfig's current context"


class MeshfleetError(Exception):
    """A failure with its message; `result` holds the module's result fields at the failure."""

    def __init__(self, message="", **result):
        super().__init__(message)
        self.result = result

    def message(self, params):
        """The message a module fails with; `params` are the module's."""
        return str(self)
