# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Where a module's cluster is and how it signs in.

The way meshfleet's inventory reaches a cluster (a kubeconfig file and a context whose user
signs in with a client certificate or a bearer token) is read here directly. Every other way
kubernetes.core supports (its other auth options and K8S_AUTH_* variables, in-cluster config,
exec and auth-provider plugins, proxies, impersonation, an in-memory kubeconfig) is set up by
kubernetes.core's own client, imported only then: the import alone costs a module process about
0.3 CPU-seconds, more than most modules' work (docs/benchmarks.md).
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import (
    AUTH_ARG_MAP,
    AUTH_ARG_SPEC,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError

try:
    import yaml
except ImportError:  # reported by the module's requirement check
    yaml = None

# A kubeconfig's cluster and user fields that this file reads itself.
CLUSTER_FIELDS = {"server", "certificate-authority", "certificate-authority-data",
                  "insecure-skip-tls-verify", "extensions"}
USER_FIELDS = {"client-certificate", "client-certificate-data", "client-key", "client-key-data",
               "token", "tokenFile", "extensions"}


class KubeconfigError(MeshfleetError):
    """The kubeconfig cannot be used: the message says which file, context and field."""


class Connection(object):
    """Everything a request needs: the server's URL, TLS, the Authorization header and any
    default headers and proxy."""

    def __init__(self, server, tls, authorization=None, headers=None, proxy=None,
                 proxy_headers=None, no_proxy=None, server_hostname=None):
        self.server = server.rstrip("/")
        self.tls = tls
        self.authorization = authorization or (lambda: None)
        self.headers = dict(headers or {})
        self.proxy = proxy
        self.proxy_headers = dict(proxy_headers or {})
        self.no_proxy = [entry.strip() for entry in (no_proxy or "").split(",") if entry.strip()]
        self.server_hostname = server_hostname


def auth_options(params):
    """kubernetes.core's auth options as it reads them: the task's value, else K8S_AUTH_<NAME>."""
    options = {}
    names = dict((arg, true) for true, arg in AUTH_ARG_MAP.items())
    for name in AUTH_ARG_SPEC:
        value = params.get(name)
        if value is None:
            value = (os.environ.get("K8S_AUTH_%s" % name.upper())
                     or os.environ.get("K8S_AUTH_%s" % names.get(name, name).upper()))
        if value not in (None, "", [], {}):
            options[name] = value
    return options


def connection_of(params):
    """The Connection for a module's auth options (or overrides of them)."""
    options = auth_options(params)
    plain = plain_kubeconfig(options)
    if plain is not None:
        return from_kubeconfig(*plain)
    return from_kubernetes_client(options)


def plain_kubeconfig(options):
    """(path, context) when the options name only a kubeconfig file and a context, else None."""
    if set(options) - {"kubeconfig", "context"} or not options:
        return None
    path = options.get("kubeconfig") or os.environ.get("KUBECONFIG") or "~/.kube/config"
    if not isinstance(path, str) or os.pathsep in path:
        return None
    return os.path.expanduser(path), options.get("context")


def _named(entries, name, what, path):
    for entry in entries or []:
        if entry.get("name") == name:
            return entry.get(what) or {}
    raise KubeconfigError("%s: no %s named %r" % (path, what, name))


def from_kubeconfig(path, context_name):
    """The Connection of `context_name` (or the current context) in the kubeconfig at `path`;
    one that needs more than a certificate or a token is set up by kubernetes.core's client."""
    if yaml is None:
        raise KubeconfigError("reading the kubeconfig %s needs PyYAML on the host the module "
                              "runs on (pip install pyyaml)" % path)
    try:
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
    except (IOError, OSError) as error:
        raise KubeconfigError("cannot read the kubeconfig %s: %s" % (path, error)) from error
    context_name = context_name or config.get("current-context")
    if not context_name:
        raise KubeconfigError("%s: no context given and no current-context" % path)
    context = _named(config.get("contexts"), context_name, "context", path)
    cluster = _named(config.get("clusters"), context.get("cluster"), "cluster", path)
    user = _named(config.get("users"), context.get("user"), "user", path)
    if set(cluster) - CLUSTER_FIELDS or set(user) - USER_FIELDS or not cluster.get("server"):
        return from_kubernetes_client(dict(kubeconfig=path, context=context_name))
    base = os.path.dirname(os.path.abspath(path))
    tls = _tls_context(cluster, user, base)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read(_relative(user["tokenFile"], base)).decode().strip()
    return Connection(cluster["server"], tls,
                      authorization=(lambda: "Bearer " + token) if token else None)


def _relative(name, base):
    return name if os.path.isabs(name) else os.path.join(base, name)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _material(entry, field, base):
    """The PEM of a `<field>-data` (base64) or `<field>` (a file) entry, or None."""
    if entry.get(field + "-data"):
        return base64.b64decode(entry[field + "-data"])
    if entry.get(field):
        return _read(_relative(entry[field], base))
    return None


def _tls_context(cluster, user, base):
    context = ssl.create_default_context()
    authority = _material(cluster, "certificate-authority", base)
    if authority:
        context.load_verify_locations(cadata=authority.decode("ascii"))
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    certificate = _material(user, "client-certificate", base)
    if certificate:
        _load_client_pair(context, certificate, _material(user, "client-key", base))
    return context


def _load_client_pair(context, certificate, key):
    """ssl loads a client certificate from files only: each is written to a private temporary
    file, loaded into memory and removed at once."""
    paths = []
    try:
        for material in (certificate, key or b""):
            handle, path = tempfile.mkstemp(prefix="meshfleet-tls-")
            paths.append(path)
            with os.fdopen(handle, "wb") as out:
                out.write(material)
        context.load_cert_chain(paths[0], paths[1] if key else None)
    finally:
        for path in paths:
            os.unlink(path)


def from_kubernetes_client(options):
    """The Connection kubernetes.core's client would use for these auth options."""
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (
        get_api_client,
    )

    api_client = get_api_client(**options).client.client
    configuration = api_client.configuration
    return Connection(
        configuration.host, _tls_of_configuration(configuration),
        authorization=lambda: _authorization_of_configuration(configuration),
        headers=api_client.default_headers, proxy=configuration.proxy,
        proxy_headers=configuration.proxy_headers or {},
        no_proxy=getattr(configuration, "no_proxy", None),
        server_hostname=getattr(configuration, "tls_server_name", None))


def _tls_of_configuration(configuration):
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


def _authorization_of_configuration(configuration):
    """The Authorization header the client would send, asked for at every request so that an
    exec plugin's or auth provider's token is refreshed."""
    for setting in configuration.auth_settings().values():
        if setting.get("in") == "header" and setting.get("key", "").lower() == "authorization":
            if setting.get("value"):
                return setting["value"]
    if configuration.username and configuration.password:
        return configuration.get_basic_auth_token()
    return None
