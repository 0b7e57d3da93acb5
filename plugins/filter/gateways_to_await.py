# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The gateway Deployments the gateways role waits for (logic in module_utils/replicas_wait.py)."""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.replicas_wait import (
    gateways_to_await,
)


class FilterModule(object):
    def filters(self):
        return {"gateways_to_await": gateways_to_await}
