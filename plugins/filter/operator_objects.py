# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Filters over the istio-operator chart's objects (plugins/module_utils/operator_chart.py)."""

from __future__ import annotations

import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.meshfleet.istio.plugins.module_utils import operator_chart


def operator_objects(manifest, revision):
    """The rendered chart split into the shared CRD and the revision's own objects."""
    try:
        return operator_chart.split_rendered(yaml.safe_load_all(manifest or ""), revision)
    except (operator_chart.OperatorChartError, yaml.YAMLError) as error:
        raise AnsibleFilterError(str(error))


def operator_refs(revision, namespace):
    """Every object of one revision's operator, by name only."""
    return operator_chart.revision_refs(revision, namespace)


class FilterModule(object):
    def filters(self):
        return {"operator_objects": operator_objects, "operator_refs": operator_refs}
