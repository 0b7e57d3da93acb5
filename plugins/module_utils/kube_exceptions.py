# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The kubernetes client's exceptions meshfleet catches, importable without the client."""

from __future__ import annotations

try:
    from kubernetes.dynamic.exceptions import (  # noqa: F401 pylint: disable=unused-import
        ConflictError,
        NotFoundError,
        ResourceNotFoundError,
        TooManyRequestsError,
    )
except ImportError:  # reported by AnsibleK8SModule's requirement check

    class ConflictError(Exception):
        pass

    class NotFoundError(Exception):
        pass

    class ResourceNotFoundError(Exception):
        pass

    class TooManyRequestsError(Exception):
        pass
