# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment(object):
    """The two revision tags a canary upgrade moves (upgrade.yml and rollback.yml set them from
    meshfleet_stable_tag and meshfleet_canary_tag)."""

    DOCUMENTATION = r"""
options:
  stable_tag:
    description: The tag application namespaces select.
    type: str
    default: prod-stable
  canary_tag:
    description: The tag that points at the new revision before promotion.
    type: str
    default: prod-canary
"""
