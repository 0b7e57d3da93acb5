# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Helm releases, read before they are written.

A release is upgraded only when its chart version or its values differ from the wanted ones,
so an unchanged release costs reads only. The diff is real: the manifest Helm holds for the
release against the manifest the wanted chart and values render to.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible_collections.meshfleet.istio.plugins.module_utils import helm_record
from ansible_collections.meshfleet.istio.plugins.module_utils.access import denial, unreachable
from ansible_collections.meshfleet.istio.plugins.module_utils.helm_drift import (
    DESCRIPTION_PREFIX,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.errors import (
    MeshfleetError,
    cluster_name,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_api import KubeApi
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_connection import (
    connection_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.kube_exceptions import (
    ApiError,
    ApiUnreachable,
)

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")


class HelmError(MeshfleetError):
    pass


class AccessDenied(HelmError):
    """The apiserver refused one of helm's requests (403); the message says what to grant."""


class Unreachable(HelmError):
    """helm could not reach the cluster's API server; the message says which and what to check."""


# helm commands that change the cluster: each is made under the run lock.
WRITES = ("install", "upgrade", "uninstall", "rollback")


class Helm(object):
    """The helm binary, pointed at one cluster. Releases are read from the cluster directly
    (helm_record.py) while helm keeps them in Secrets; helm runs to render and to write."""

    def __init__(self, module, binary, kubeconfig=None, context=None, before_write=None,
                 api=None):
        """`api`: the cluster's kube_api.KubeApi when the module has one already."""
        self.module = module
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.context = context
        self.before_write = before_write
        self._api = api
        self._releases = {}
        self.cluster_args = []
        if kubeconfig:
            self.cluster_args += ["--kubeconfig", kubeconfig]
        if context:
            self.cluster_args += ["--kube-context", context]

    def run(self, args, absent_ok=False):
        """Run helm; with `absent_ok`, a missing release gives None instead of an error. An
        access denial raises AccessDenied, naming the cluster, the identity and the permission."""
        if args[0] in WRITES:
            if self.before_write is not None:
                self.before_write()
            self._releases.clear()
        rc, out, err = self.module.run_command([self.binary] + args + self.cluster_args)
        if rc != 0:
            if absent_ok and "not found" in err:
                return None
            denied = denial(cluster_name({"context": self.context}), err or out, describe(args))
            if denied:
                raise AccessDenied(denied)
            if "kubernetes cluster unreachable" in (err or out).lower():
                raise Unreachable(unreachable(cluster_name({"context": self.context}), err or out))
            raise HelmError("helm %s failed: %s" % (" ".join(args[:2]), (err or out).strip()))
        return out

    def _record(self, release, namespace):
        """The newest revision of the release as stored, None if absent; read once until the
        next write."""
        key = (release, namespace)
        if key not in self._releases:
            if self._api is None:
                self._api = KubeApi(connection_of(dict(kubeconfig=self.kubeconfig,
                                                       context=self.context)))
            try:
                self._releases[key] = helm_record.read_release(self._api, release, namespace)
            except ApiError as error:
                during = "reading Helm release %s/%s" % (namespace, release)
                denied = denial(cluster_name({"context": self.context}), error.message(), during)
                raise (AccessDenied(denied) if denied else HelmError(str(error))) from error
            except ApiUnreachable as error:
                raise Unreachable(unreachable(cluster_name({"context": self.context}),
                                              str(error))) from error
        return self._releases[key]

    def metadata(self, release, namespace):
        """Name, chart, chart version, revision and status of a release; None if absent."""
        if helm_record.stored_in_secrets():
            record = self._record(release, namespace)
            return helm_record.metadata(record) if record else None
        out = self.run(["get", "metadata", release, "-n", namespace, "-o", "json"],
                       absent_ok=True)
        return json.loads(out) if out is not None else None

    def values(self, release, namespace):
        if helm_record.stored_in_secrets():
            return helm_record.values(self._record(release, namespace) or {})
        out = self.run(["get", "values", release, "-n", namespace, "-o", "json"])
        return json.loads(out) or {}

    def manifest(self, release, namespace):
        if helm_record.stored_in_secrets():
            return (self._record(release, namespace) or {}).get("manifest", "")
        return self.run(["get", "manifest", release, "-n", namespace])

    def chart_version(self, chart):
        local = None if chart.repo_url else helm_record.local_chart_version(chart.ref)
        if local:
            return local
        out = self.run(["show", "chart", chart.ref] + chart.source_args())
        for line in out.splitlines():
            if line.startswith("version:"):
                return line.split(":", 1)[1].strip().strip('"')
        raise HelmError("helm show chart %s: no version" % chart.ref)

    def template(self, release, namespace, chart, values_file):
        args = ["template", release, chart.ref, "-n", namespace, "-f", values_file,
                "--is-upgrade"] + chart.source_args()
        return self.run(args)


def describe(args):
    """`helm upgrade istiod-1-31-0 -n istio-system`: the command, its release and namespace."""
    words = [arg for arg in args[:3] if not arg.startswith("-")]
    if "-n" in args[:-1]:
        words += ["-n", args[args.index("-n") + 1]]
    return "helm " + " ".join(words)


class Chart(object):
    def __init__(self, ref, repo_url=None, version=None):
        self.ref = ref
        self.repo_url = repo_url
        self.version = version

    def source_args(self):
        args = []
        if self.repo_url:
            args += ["--repo", self.repo_url]
        if self.version:
            args += ["--version", self.version]
        return args


def needs_upgrade(metadata, current_values, wanted_version, wanted_values):
    """Why the release must be (re)deployed, or an empty string."""
    if metadata is None:
        return "not installed"
    if metadata.get("status") != "deployed":
        return "release is %s" % metadata.get("status")
    if metadata.get("version") != wanted_version:
        return "chart %s -> %s" % (metadata.get("version"), wanted_version)
    if normalise(current_values) != normalise(wanted_values):
        return "values differ"
    return ""


def normalise(values):
    """Values as Helm stores them (JSON round trip: tuples become lists, keys are strings)."""
    return json.loads(json.dumps(values or {}, sort_keys=True))


def write_values(values):
    handle, path = tempfile.mkstemp(suffix=".json", prefix="meshfleet-values-")
    with os.fdopen(handle, "w") as out:
        json.dump(values or {}, out)
    return path


def recover_interrupted(helm, release, namespace, metadata):
    """A release left pending by an interrupted run blocks every later upgrade: roll an
    interrupted upgrade back to its last deployed revision, remove an interrupted or failed
    first install (Helm cannot upgrade a release that was never deployed)."""
    state = metadata.get("status")
    if state == "pending-install" or (state == "failed" and metadata.get("revision") == 1):
        helm.run(["uninstall", release, "-n", namespace, "--wait"])
    elif state in PENDING:
        helm.run(["rollback", release, "-n", namespace, "--wait"])


def wait_args(wait, timeout):
    return ["--wait", "--timeout", timeout] if wait else []


def remove_release(helm, release, namespace, wait, timeout):
    helm.run(["uninstall", release, "-n", namespace] + wait_args(wait, timeout))


def deploy(helm, release, namespace, chart, values_file, wait, timeout, reason,
           take_ownership=False):
    """helm upgrade --install, the revision described as meshfleet's (helm_drift.py tells a
    later revision made by hand from it). `take_ownership` adopts objects of the chart that exist
    without this release's ownership metadata (Helm 3.17 and later)."""
    args = ["upgrade", "--install", release, chart.ref, "-n", namespace, "-f", values_file,
            "--description", DESCRIPTION_PREFIX + reason]
    if take_ownership:
        args.append("--take-ownership")
    args += chart.source_args() + wait_args(wait, timeout)
    helm.run(args)
