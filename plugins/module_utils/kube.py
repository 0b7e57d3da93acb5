# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Cluster access for meshfleet modules: kubernetes.core's auth options, meshfleet's own REST
client (kube_api.py).

Every read returns plain dicts; every write goes through here so check mode (server-side dry
run), the field manager and the run lock are applied in one place.
"""

from __future__ import annotations

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.meshfleet.istio.plugins.module_utils.access import AccessModule
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_api import KubeApi
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_connection import (
    connection_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_exceptions import (
    NotFoundError,
    ResourceNotFoundError,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.lock_keeper import (
    LockKeeper,
    stop_with_controller,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.run_lock import DEFAULT_TTL

FIELD_MANAGER = "meshfleet"
DRY_RUN = "All"
# The run lock a playbook's writes are made under (doc fragment meshfleet.istio.run_lock).
RUN_LOCK_ARG_SPEC = dict(run_lock=dict(type="dict", no_log=False, options=dict(
    holder=dict(type="str", required=True),
    ttl=dict(type="int", default=DEFAULT_TTL),
    fence=dict(type="str"),
    break_holder=dict(type="list", elements="str"),
    force_break_holder=dict(type="list", elements="str"),
)))


def k8s_module(argument_spec, **kwargs):
    """An AnsibleK8SModule whose options include kubernetes.core's auth options; an access
    denial fails with the cluster, the identity and the missing permission (access.py). The
    kubernetes client is required only where kube_connection.py needs it."""
    spec = dict(AUTH_ARG_SPEC)
    spec.update(RUN_LOCK_ARG_SPEC)
    spec.update(argument_spec)
    return AccessModule(argument_spec=spec, supports_check_mode=True, check_k8s=False,
                        check_pyyaml=False, **kwargs)


def _auth_options(module, **overrides):
    options = dict((name, module.params.get(name)) for name in AUTH_ARG_SPEC)
    options.update(overrides)
    return options


class Cluster(object):
    """One cluster, reached with the module's auth options."""

    def __init__(self, module, context=None, kubeconfig=None):
        """The cluster of the module's auth options, or of another `context` in its kubeconfig
        (or in another `kubeconfig` file)."""
        self.module = module
        self.check_mode = module.check_mode
        self.lock = None
        if context is None and kubeconfig is None:
            self.api = KubeApi(connection_of(module.params))
            self.lock = run_lock_keeper(module, self.api)
        else:
            overrides = dict(context=context)
            if kubeconfig:
                overrides["kubeconfig"] = kubeconfig
            self.api = KubeApi(connection_of(_auth_options(module, **overrides)))

    def before_write(self):
        """Every write of a run holds the run lock, and stops when the run is gone."""
        if self.lock is not None and not self.check_mode:
            self.lock.before_write()

    def version(self):
        return self.api.version()

    def list(self, api_version, kind, namespace=None, label_selector=None, metadata_only=False):
        """The objects (with `metadata_only`, their apiVersion, kind and metadata only)."""
        return self.api.list(api_version, kind, namespace, label_selector,
                             metadata_only).get("items") or []

    def get(self, api_version, kind, name, namespace=None):
        """The object, or None when it (or, in check mode, its kind) does not exist yet."""
        try:
            return self.api.get(api_version, kind, name, namespace)
        except NotFoundError:
            return None
        except ResourceNotFoundError:
            if self.check_mode:
                return None
            raise

    def _dry_run(self):
        return DRY_RUN if self.check_mode else None

    def apply(self, body, force=True):
        """Server-side apply as the meshfleet field manager; the object as the server has it.

        In check mode an object whose kind or namespace an earlier step would create cannot be
        dry-run; the prediction is then the definition itself.
        """
        self.before_write()
        try:
            return self.api.apply(body, FIELD_MANAGER, force, dry_run=self._dry_run())
        except (ResourceNotFoundError, NotFoundError):
            if self.check_mode:
                return body
            raise

    def merge_patch(self, api_version, kind, name, patch, namespace=None):
        self.before_write()
        return self.api.merge_patch(api_version, kind, name, patch, namespace, FIELD_MANAGER,
                                    dry_run=self._dry_run())

    def evict(self, body):
        """POST an Eviction for the pod it names (raises TooManyRequestsError when a
        PodDisruptionBudget allows no disruption now)."""
        meta = body["metadata"]
        self.before_write()
        return self.api.create("v1", "Pod", body, meta["namespace"], meta["name"], "eviction",
                               dry_run=self._dry_run())

    def delete(self, api_version, kind, name, namespace=None):
        self.before_write()
        try:
            self.api.delete(api_version, kind, name, namespace, dry_run=self._dry_run())
        except NotFoundError:
            return False
        return True


def run_lock_keeper(module, api):
    """The keeper of the run lock the module's writes are made under (its `run_lock` option),
    watching the run's ansible-playbook process; None when the module runs without one."""
    spec = module.params.get("run_lock")
    if not spec or module.check_mode:
        return None
    keeper = LockKeeper.from_params(api, spec)
    stop_with_controller(keeper.controller)
    return keeper
