# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Cluster access for meshfleet modules, on top of kubernetes.core's client and auth options.

Every read returns plain dicts; every write goes through here so check mode (server-side dry
run) and the field manager are applied in one place.
"""

from __future__ import annotations

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.meshfleet.istio.plugins.module_utils.access import AccessModule
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
    denial fails with the cluster, the identity and the missing permission (access.py)."""
    spec = dict(AUTH_ARG_SPEC)
    spec.update(RUN_LOCK_ARG_SPEC)
    spec.update(argument_spec)
    return AccessModule(argument_spec=spec, supports_check_mode=True, **kwargs)


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
            self.client = get_api_client(module=module).client
            self.lock = run_lock_keeper(module, self.client)
        else:
            overrides = dict(context=context)
            if kubeconfig:
                overrides["kubeconfig"] = kubeconfig
            self.client = get_api_client(**_auth_options(module, **overrides)).client
        self._resources = {}

    def before_write(self):
        """Every write of a run holds the run lock, and stops when the run is gone."""
        if self.lock is not None and not self.check_mode:
            self.lock.before_write()

    def resource(self, api_version, kind):
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self.client.resources.get(api_version=api_version, kind=kind)
        return self._resources[key]

    def version(self):
        return self.client.version["kubernetes"]

    def list(self, api_version, kind, namespace=None, label_selector=None):
        result = self.client.get(self.resource(api_version, kind), namespace=namespace,
                                 label_selector=label_selector)
        return [item.to_dict() for item in result.items]

    def get(self, api_version, kind, name, namespace=None):
        """The object, or None when it (or, in check mode, its kind) does not exist yet."""
        try:
            return self.client.get(self.resource(api_version, kind), name=name,
                                   namespace=namespace).to_dict()
        except NotFoundError:
            return None
        except ResourceNotFoundError:
            if self.check_mode:
                return None
            raise

    def _dry_run(self):
        return {"dry_run": DRY_RUN} if self.check_mode else {}

    def apply(self, body, force=True):
        """Server-side apply as the meshfleet field manager; the object as the server has it.

        In check mode an object whose kind or namespace an earlier step would create cannot be
        dry-run; the prediction is then the definition itself.
        """
        meta = body["metadata"]
        self.before_write()
        try:
            return self.client.server_side_apply(
                self.resource(body["apiVersion"], body["kind"]), body=body, name=meta["name"],
                namespace=meta.get("namespace"), field_manager=FIELD_MANAGER,
                force_conflicts=force, **self._dry_run()).to_dict()
        except (ResourceNotFoundError, NotFoundError):
            if self.check_mode:
                return body
            raise

    def merge_patch(self, api_version, kind, name, patch, namespace=None):
        self.before_write()
        return self.client.patch(
            self.resource(api_version, kind), body=patch, name=name, namespace=namespace,
            content_type="application/merge-patch+json", field_manager=FIELD_MANAGER,
            **self._dry_run()).to_dict()

    def delete(self, api_version, kind, name, namespace=None):
        self.before_write()
        try:
            self.client.delete(self.resource(api_version, kind), name=name, namespace=namespace,
                               **self._dry_run())
        except NotFoundError:
            return False
        return True


def run_lock_keeper(module, client):
    """The keeper of the run lock the module's writes are made under (its `run_lock` option),
    watching the run's ansible-playbook process; None when the module runs without one."""
    spec = module.params.get("run_lock")
    if not spec or module.check_mode:
        return None
    keeper = LockKeeper.from_params(client, spec)
    stop_with_controller(keeper.controller)
    return keeper


def run_lock_keeper_of_kubeconfig(module, kubeconfig, context):
    """run_lock_keeper for a module that reaches the cluster by kubeconfig and context only."""
    if not module.params.get("run_lock") or module.check_mode:
        return None
    options = dict((name, None) for name in AUTH_ARG_SPEC)
    options.update(kubeconfig=kubeconfig, context=context)
    return run_lock_keeper(module, get_api_client(**options).client)
