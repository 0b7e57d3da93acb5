# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The order in which reports list clusters."""

from __future__ import annotations

import re


def natural_key(name):
    """Sort key that puts cluster9 before cluster10 (digit runs compare as numbers)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(name)) if part]
