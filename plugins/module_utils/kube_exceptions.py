# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The apiserver's answers that meshfleet acts on, as exceptions (raised by kube_api.py)."""

from __future__ import annotations

import json


class ApiError(Exception):
    """An apiserver's error status: `status` (HTTP code), `reason` and its `body` (a Status)."""

    def __init__(self, status, reason, body, request=""):
        self.status = status
        self.reason = reason
        self.body = body
        self.request = request
        super().__init__("%s: %s %s: %s" % (request, status, reason, self.message()))

    def message(self):
        """The Status message the apiserver sent, else its body."""
        try:
            return json.loads(self.body).get("message") or self.body
        except (ValueError, AttributeError):
            return self.body


class NotFoundError(ApiError):
    """404: the object does not exist."""


class ConflictError(ApiError):
    """409: the object changed since it was read, or already exists."""


class TooManyRequestsError(ApiError):
    """429: for an eviction, a PodDisruptionBudget allows no disruption now."""


class ResourceNotFoundError(Exception):
    """The apiserver does not serve this kind in this API version (its CRD is not installed)."""


class ApiUnreachable(Exception):
    """No answer from the apiserver: the message names the request, the server and the cause."""


BY_STATUS = {404: NotFoundError, 409: ConflictError, 429: TooManyRequestsError}


def api_error(status, reason, body, request=""):
    return BY_STATUS.get(status, ApiError)(status, reason, body, request)
