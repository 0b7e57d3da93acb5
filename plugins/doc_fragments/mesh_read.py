# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment(object):
    """A module that reads a cluster's mesh and writes nothing."""

    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: Read-only.
    support: none
options:
  istio_namespace:
    description: Namespace of the control planes, where the revisions and tags are read.
    type: str
    default: istio-system
"""
