# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The istiod role's preflight: every conflict of an install with the cluster, at once."""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.install_conflicts import (
    install_conflicts,
)


class FilterModule(object):
    def filters(self):
        return {"install_conflicts": install_conflicts}
