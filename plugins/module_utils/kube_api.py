# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The Kubernetes REST API as meshfleet's modules use it: find a kind's resource (discovery),
then get, list, create, replace, patch, apply and delete objects as JSON dicts.

Requests go over the standard library's HTTP client on one kept-alive connection per cluster,
set up by kube_connection.py; the apiserver's errors become kube_exceptions' exceptions.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.meshfleet.istio.plugins.module_utils.kube_exceptions import (
    ApiUnreachable,
    NotFoundError,
    ResourceNotFoundError,
    api_error,
)

TIMEOUT = 120
# How the apiserver's audit log names these requests (localfleet.audit_requests files them under the
# modules, as it did the Kubernetes Python client's).
USER_AGENT = "meshfleet-modules (python http.client)"
APPLY = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# A list of objects' metadata only (names, labels, annotations): a fraction of the full objects.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


@dataclass
class Resource:
    """A kind as the apiserver serves it: its API version, plural name and scope."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, name=None, namespace=None, subresource=None):
        prefix = "/api/v1" if self.api_version == "v1" else "/apis/" + self.api_version
        parts = [prefix]
        if self.namespaced and namespace:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked against `server_hostname` when the kubeconfig names
    one (tls-server-name), else against the host dialled."""

    def __init__(self, host, port, context, server_hostname, timeout):
        super().__init__(host, port, context=context, timeout=timeout)
        self._server_hostname = server_hostname

    def connect(self):
        http.client.HTTPConnection.connect(self)
        name = self._server_hostname or self._tunnel_host or self.host
        self.sock = self._context.wrap_socket(self.sock, server_hostname=name)


class KubeApi(object):
    """One cluster's apiserver, reached through a kube_connection.Connection."""

    def __init__(self, connection):
        self.connection = connection
        self.url = urlsplit(connection.server)
        self._http = None
        self._served = {}

    # ------------------------------------------------------------ transport

    def _proxied(self):
        host = self.url.hostname or ""
        return self.connection.proxy and not any(
            host == entry.lstrip(".") or host.endswith("." + entry.lstrip("."))
            for entry in self.connection.no_proxy)

    def _open(self):
        port = self.url.port or (443 if self.url.scheme == "https" else 80)
        host = self.url.hostname
        proxied = self._proxied()
        if proxied:
            proxy = urlsplit(self.connection.proxy)
            dial = (proxy.hostname, proxy.port or 3128)
        else:
            dial = (host, port)
        if self.url.scheme == "https":
            conn = _TLSConnection(dial[0], dial[1], self.connection.tls,
                                  self.connection.server_hostname, TIMEOUT)
        else:
            conn = http.client.HTTPConnection(dial[0], dial[1], timeout=TIMEOUT)
        if proxied:
            conn.set_tunnel(host, port, headers=self.connection.proxy_headers)
        return conn

    def _headers(self, content_type, accept):
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        headers.update(self.connection.headers)
        authorization = self.connection.authorization()
        if authorization:
            headers["Authorization"] = authorization
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _exchange(self, method, path, payload, headers):
        if self._http is None:
            self._http = self._open()
        self._http.request(method, self.url.path.rstrip("/") + path, body=payload,
                           headers=headers)
        response = self._http.getresponse()
        return response.status, response.reason, response.read()

    def request(self, method, path, body=None, content_type=None, accept="application/json",
                **query):
        """The decoded answer to one request; an error status raises kube_exceptions'
        exception for it. `query` names are the API's (labelSelector, dryRun, ...)."""
        query = dict((name, value) for name, value in query.items() if value is not None)
        if query:
            path += "?" + urlencode(query)
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = self._headers(content_type or ("application/json" if payload else None),
                                accept)
        described = "%s %s%s" % (method, self.connection.server, path.split("?")[0])
        for attempt in (1, 2):
            try:
                status, reason, data = self._exchange(method, path, payload, headers)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as error:
                # A kept-alive connection the server closed meanwhile: dial again once.
                self.close()
                if attempt == 2:
                    raise ApiUnreachable("%s: %s" % (described, _cause(error))) from error
            except (OSError, ssl.SSLError, socket.timeout, http.client.HTTPException) as error:
                self.close()
                raise ApiUnreachable("%s: %s" % (described, _cause(error))) from error
        text = data.decode("utf-8", "replace")
        if status >= 400:
            raise api_error(status, reason, text, described)
        return json.loads(text) if text else None

    def close(self):
        if self._http is not None:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------ discovery

    def resource(self, api_version, kind):
        """The Resource of `kind` in `api_version`; ResourceNotFoundError if not served."""
        if api_version not in self._served:
            self._served[api_version] = self._discover(api_version)
        found = self._served[api_version].get(kind)
        if found is None:
            raise ResourceNotFoundError("the apiserver at %s serves no %s in %s"
                                        % (self.connection.server, kind, api_version))
        return found

    def _discover(self, api_version):
        path = "/api/v1" if api_version == "v1" else "/apis/" + api_version
        try:
            listing = self.request("GET", path)
        except NotFoundError:
            return {}
        return dict((entry["kind"], Resource(api_version, entry["kind"], entry["name"],
                                             entry.get("namespaced", False)))
                    for entry in listing.get("resources", []) if "/" not in entry["name"])

    def version(self):
        return self.request("GET", "/version")

    # ------------------------------------------------------------ objects

    def get(self, api_version, kind, name, namespace=None):
        return self.request("GET", self.resource(api_version, kind).path(name, namespace))

    def list(self, api_version, kind, namespace=None, label_selector=None, metadata_only=False):
        return self.request("GET", self.resource(api_version, kind).path(namespace=namespace),
                            accept=METADATA_ONLY if metadata_only else "application/json",
                            labelSelector=label_selector)

    def create(self, api_version, kind, body, namespace=None, name=None, subresource=None,
               dry_run=None):
        """POST `body` to the kind's collection, or to object `name`'s `subresource` (a Pod's
        eviction)."""
        path = self.resource(api_version, kind).path(name, namespace, subresource)
        return self.request("POST", path, body, dryRun=dry_run)

    def replace(self, body, namespace=None, dry_run=None):
        meta = body["metadata"]
        resource = self.resource(body["apiVersion"], body["kind"])
        return self.request("PUT", resource.path(meta["name"], namespace), body,
                            dryRun=dry_run)

    def apply(self, body, field_manager, force, dry_run=None):
        meta = body["metadata"]
        resource = self.resource(body["apiVersion"], body["kind"])
        return self.request("PATCH", resource.path(meta["name"], meta.get("namespace")), body,
                            APPLY, fieldManager=field_manager,
                            force="true" if force else None, dryRun=dry_run)

    def merge_patch(self, api_version, kind, name, patch, namespace=None, field_manager=None,
                    dry_run=None):
        return self.request("PATCH", self.resource(api_version, kind).path(name, namespace),
                            patch, MERGE_PATCH, fieldManager=field_manager, dryRun=dry_run)

    def delete(self, api_version, kind, name, namespace=None, dry_run=None):
        return self.request("DELETE", self.resource(api_version, kind).path(name, namespace),
                            dryRun=dry_run)


def _cause(error):
    """`connection refused ([Errno 111] Connection refused)`: a cause access.unreachable knows
    first, then the system's words."""
    text = str(error) or error.__class__.__name__
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (%s)" % text
    if isinstance(error, socket.timeout):
        return "timed out (%s)" % text
    return text
