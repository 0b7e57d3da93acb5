# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment(object):
    """Where a module finds the control planes."""

    DOCUMENTATION = r"""
options:
  istio_namespace:
    description: Namespace of the control planes, where the revisions and tags are read.
    type: str
    default: istio-system
"""
