"""A stand-in for istiod's webhooks, run by the local fleet (test tooling, never part of the
collection): one process per fleet, inside the fleet's network namespace, started by `up` and
stopped by `down`. Where it differs from istiod: docs/local-fleet.md.

For each cluster it watches, in istio-system, the Services labelled istio.io/rev and their
EndpointSlices, and the webhook configurations labelled istio.io/rev. While such a Service has
ready endpoints (KWOK turns istiod's pods Ready), the stand-in listens on the Service's
ClusterIP:443 -- the namespace delivers each cluster's Service CIDR locally -- and answers
/inject and /validate for the Service's revision, so the cluster comes from the dialled address
and the revision from the dialled Service. For each running revision it also does istiod's own
writes, as istiod's service account with istiod's user agent and verb (update):
caBundle into the revision's injector webhooks, and caBundle plus failurePolicy Fail into its
validators once a dry run of an invalid Gateway is denied.

    python -m localfleet.istiod_standin --fleet NAME     (logs to stderr)
"""

import argparse
import base64
import copy
import datetime
import http.client
import json
import logging
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import istiod_webhooks, operator_process, pod_port_forwards
from .fleet import Fleet
from .istiod_supervisor import Forwarder, RealIstiods

NAMESPACE = "istio-system"
REV_LABEL = "istio.io/rev"
WEBHOOK_PORT = 443
INJECTOR_SUFFIX = "sidecar-injector.istio.io"  # the webhooks istiod's cert patcher updates
RESYNC_SECONDS = 5  # a reconcile also runs this often, to retry writes that failed
STARTING_RESYNC_SECONDS = 0.5  # and this often while a real istiod is starting
WATCH_SECONDS = 300
MAX_REVIEW_BYTES = 16 << 20
FAIL_CLOSE_READY = ("denied the request", "the server could not find the requested resource",
                    "does not support dry run")  # istiod's isDryRunOfInvalidConfigRejected

KUBELET_USER = "system:localfleet:kubelet"  # marks real istiods serving, forwards pod ports

log = logging.getLogger("istiod-standin")


# ---------------------------------------------------------------- certificates

def _certificate(subject, issuer, public_key, signing_key, extensions):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=365)))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_or_create_ca(directory: Path):
    """The fleet's stand-in CA (kept across restarts of the stand-in, like istio-ca-secret)."""
    key_file, cert_file = directory / "ca.key", directory / "ca.crt"
    if not cert_file.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "localfleet istiod stand-in CA")])
        cert = _certificate(name, name, key.public_key(), key, [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
            (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)])
        key_file.write_bytes(_pem_key(key))
        key_file.chmod(0o600)
        cert_file.with_suffix(".tmp").write_bytes(_pem_cert(cert))
        cert_file.with_suffix(".tmp").replace(cert_file)
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    return key, x509.load_pem_x509_certificate(cert_file.read_bytes())


def serving_names(revision: str) -> list:
    """istiod's webhook certificate names (pilot/pkg/bootstrap getDNSNames, no custom hosts)."""
    hosts = ["istiod", "istiod-remote", "istio-pilot"]
    if revision not in ("", "default"):
        hosts.append(f"istiod-{revision}")
    return sorted(f"{host}.{NAMESPACE}.svc" for host in hosts)


def issue_serving_cert(ca_key, ca_cert, revision: str):
    key = ec.generate_private_key(ec.SECP256R1())
    names = serving_names(revision)
    cert = _certificate(x509.Name([]), ca_cert.subject, key.public_key(), ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), True),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)])
    return key, cert


# ---------------------------------------------------------------- talking to an apiserver

class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Api:
    """A minimal client of one cluster's apiserver: the fleet's admin identity, optionally
    impersonating another user and with another user agent (which names the field manager)."""

    def __init__(self, port: int, tls: ssl.SSLContext, user_agent: str = "istiod-standin",
                 impersonate: str = None, groups: tuple = ()):
        self.port, self.tls = port, tls
        self.headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if impersonate:
            self.headers["Impersonate-User"] = impersonate
        self.groups = tuple(groups)

    def acting_as(self, user: str, user_agent: str, groups: tuple = ()) -> "Api":
        return Api(self.port, self.tls, user_agent, user, groups)

    def _send(self, method: str, path: str, body=None, timeout: float = 15,
              content_type: str = "application/json"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.tls,
                                           timeout=timeout)
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            for group in self.groups:  # a header given once per group
                conn.putheader("Impersonate-Group", group)
            conn.putheader("Content-Length", str(len(data or b"")))
            conn.endheaders(data)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def request(self, method: str, path: str, body=None,
                content_type: str = "application/json") -> dict:
        conn, resp = self._send(method, path, body, content_type=content_type)
        try:
            payload = resp.read()
        finally:
            conn.close()
        try:
            decoded = json.loads(payload) if payload else {}
        except ValueError:
            decoded = {"message": payload[:300].decode(errors="replace")}
        if resp.status >= 400:
            raise ApiError(resp.status, decoded.get("message", ""))
        return decoded

    def watch(self, path: str, resource_version: str):
        """Events of a watch from `resource_version`, until the server ends it."""
        sep = "&" if "?" in path else "?"
        conn, resp = self._send("GET", f"{path}{sep}watch=1&resourceVersion={resource_version}"
                                       f"&timeoutSeconds={WATCH_SECONDS}",
                                timeout=WATCH_SECONDS + 30)
        try:
            if resp.status != 200:
                raise ApiError(resp.status, resp.read(300).decode(errors="replace"))
            for line in resp:
                yield json.loads(line)
        finally:
            conn.close()


class Collection(threading.Thread):
    """A local copy (by name) of one list of one cluster's objects, kept up to date by a
    watch; `changed` is called after every change. Keeps the last copy while the apiserver
    is away, as an informer does."""

    def __init__(self, api: Api, path: str, changed):
        super().__init__(daemon=True, name=path)
        self.api, self.path, self.changed = api, path, changed
        self._items = {}
        self._lock = threading.Lock()

    def items(self) -> list:
        with self._lock:
            return list(self._items.values())

    def run(self):
        failing = False
        while True:
            try:
                self._list_and_watch()
            except Exception as err:  # keep watching whatever the apiserver or a reply does
                if not failing:
                    log.warning("%s:%s: %r (retrying every second)", self.api.port, self.path, err)
                failing = True
                time.sleep(1)
                continue
            failing = False

    def _list_and_watch(self):
        listed = self.api.request("GET", self.path)
        with self._lock:
            self._items = {o["metadata"]["name"]: o for o in listed.get("items", [])}
        self.changed()
        for event in self.api.watch(self.path, listed["metadata"]["resourceVersion"]):
            if event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
                return  # ERROR (e.g. 410 Gone) or BOOKMARK: list again
            obj = event["object"]
            with self._lock:
                if event["type"] == "DELETED":
                    self._items.pop(obj["metadata"]["name"], None)
                else:
                    self._items[obj["metadata"]["name"]] = obj
            self.changed()


# ---------------------------------------------------------------- serving webhooks

class WebhookHandler(BaseHTTPRequestHandler):
    server_version = "istiod-standin"

    def do_POST(self):
        listener = self.server
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_REVIEW_BYTES:
                raise ValueError(f"body of {length} bytes")
            review = json.loads(self.rfile.read(length))
            answer = listener.agent.admit(self.path, review, listener.revision)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("%s %s: bad admission review: %r", listener.where, self.path, err)
            self._reply(400, {"error": f"bad admission review: {err}"})
            return
        if answer is None:
            self._reply(404, {"error": f"no handler for {self.path}"})
            return
        log.info("%s %s sni=%s %s -> allowed=%s %s", listener.where, self.path.split("?")[0],
                 getattr(self.connection, "sni", None), describe_request(review),
                 answer["response"]["allowed"],
                 answer["response"].get("status", {}).get("message", ""))
        self._reply(200, answer)

    def _reply(self, code: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("%s " + format, self.server.where, *args)


def describe_request(review: dict) -> str:
    request = review.get("request") or {}
    obj = request.get("object") or {}
    name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName", "")
    return (f"{request.get('operation')} {request.get('kind', {}).get('kind')} "
            f"{request.get('namespace', '')}/{name}")


def served(service: dict) -> tuple:
    """What a listener on the Service's ClusterIP answers for: (Service name, revision)."""
    return service["metadata"]["name"], service["metadata"]["labels"][REV_LABEL]


class Listener(ThreadingHTTPServer):
    """TLS on one Service's ClusterIP:443, answering for that Service's revision."""

    daemon_threads = True

    def __init__(self, agent: "ClusterAgent", address: str, service: dict, tls: ssl.SSLContext):
        self.agent, self.tls = agent, tls
        self.serves = served(service)
        name, self.revision = self.serves
        self.where = f"{agent.name} {address}:{WEBHOOK_PORT} ({name})"
        super().__init__((address, WEBHOOK_PORT), WebhookHandler)
        threading.Thread(target=self.serve_forever, daemon=True, name=self.where).start()

    def finish_request(self, request, client_address):
        request.settimeout(10)
        with self.tls.wrap_socket(request, server_side=True) as connection:
            self.RequestHandlerClass(connection, client_address, self)

    def handle_error(self, request, client_address):
        log.warning("%s: connection from %s failed: %r", self.where, client_address[0],
                    sys.exc_info()[1])

    def close(self):
        self.shutdown()
        self.server_close()


# ---------------------------------------------------------------- one cluster

@dataclass
class Revision:
    """A revision whose istiod has ready endpoints in one cluster."""

    name: str
    api: Api  # as istiod's service account, with istiod's user agent
    fail_close_ready: bool = False  # a dry run of invalid config was denied


class ClusterAgent:
    """The stand-in's work for one cluster: watches, listeners, istiod's writes."""

    def __init__(self, cluster, standin: "Standin"):
        self.name, self.standin = cluster.spec.name, standin
        self.api = Api(cluster.spec.apiserver_port, cluster.ssl_context("admin"))
        self._wake = threading.Event()
        admission = "/apis/admissionregistration.k8s.io/v1"
        self.services = self._collection(
            f"/api/v1/namespaces/{NAMESPACE}/services?labelSelector={REV_LABEL}")
        self.slices = self._collection(
            f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices")
        self.injectors = self._collection(
            f"{admission}/mutatingwebhookconfigurations?labelSelector={REV_LABEL}")
        self.validators = self._collection(
            f"{admission}/validatingwebhookconfigurations?labelSelector={REV_LABEL}")
        self.listeners = {}  # ClusterIP -> Listener or Forwarder
        self.revisions = {}  # name -> Revision, for those the stand-in serves
        self.real = None
        self.pods = self._collection(
            f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3Distiod")
        kubelet = self.api.acting_as(KUBELET_USER, "localfleet-kubelet", ("system:masters",))
        if standin.real_istiod:
            self.deployments = self._collection(
                f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments?labelSelector=app%3Distiod")
            self.real = RealIstiods(self.name, cluster.spec.index, kubelet,
                                    cluster.kubeconfig_path("admin"), cluster.dir / "istiod")
        self.debug = pod_port_forwards.DebugEndpoint(
            pod_port_forwards.debug_address(cluster.spec.index))
        self.port_forwards = pod_port_forwards.PortForwards(self.name, kubelet)
        # The IstioOperator engine's operators (Istio 1.22, 1.23) run whichever istiod serves.
        self.operator_deployments = self._collection(
            f"/apis/apps/v1/namespaces/{operator_process.NAMESPACE}/deployments")
        self.operator_pods = self._collection(
            f"/api/v1/namespaces/{operator_process.NAMESPACE}/pods?labelSelector="
            + operator_process.POD_SELECTOR.replace("=", "%3D"))
        self.operators = operator_process.RealOperators(
            self.name, cluster.spec.index, cluster.kubeconfig_path("admin"),
            cluster.dir / "operator")

    def _collection(self, path: str) -> Collection:
        return Collection(self.api, path, self._wake.set)

    def start(self):
        collections = [self.services, self.slices, self.injectors, self.validators,
                       self.operator_deployments, self.operator_pods, self.pods]
        if self.real:
            collections.append(self.deployments)
        for collection in collections:
            collection.start()
        threading.Thread(target=self._loop, daemon=True, name=f"{self.name} reconcile").start()

    def _loop(self):
        while True:
            starting = self.real and self.real.starting()
            self._wake.wait(STARTING_RESYNC_SECONDS if starting else RESYNC_SECONDS)
            self._wake.clear()
            try:
                self.reconcile()
            except Exception:  # keep serving whatever one pass runs into
                log.exception("%s: reconcile failed", self.name)

    def reconcile(self):
        self.operators.reconcile(self.operator_deployments.items(), self.operator_pods.items())
        if self.real:
            self.real.reconcile(self.deployments.items(), self.pods.items())
        self.port_forwards.reconcile(self.pods.items(), self._ports_of)
        ready = self.ready_services()
        self._update_revisions({ip: svc for ip, svc in ready.items()
                                if not self._real_revision(svc)})
        self._update_listeners(ready)
        for revision in list(self.revisions.values()):
            self._patch_injectors(revision)
            self._patch_validators(revision)

    def _ports_of(self, pod: dict):
        """Where an istiod pod's ports are served: its revision's ready real istiod (None while
        it starts), else the stand-in's debug endpoint."""
        revision = (pod["metadata"].get("labels") or {}).get(REV_LABEL) or "default"
        if self.real and self.real.handles(revision):
            process = self.real.serving(revision)
            return process.address if process else None
        return self.debug.address

    # -------------------------------------------------------- readiness

    def ready_endpoints(self, service: str) -> list:
        return [endpoint for s in self.slices.items()
                if s["metadata"].get("labels", {}).get("kubernetes.io/service-name") == service
                for endpoint in s.get("endpoints") or []
                if endpoint.get("conditions", {}).get("ready") is not False]

    def ready_services(self) -> dict:
        """ClusterIP -> Service, for revision Services with port 443 and ready endpoints."""
        return {svc["spec"]["clusterIP"]: svc for svc in self.services.items()
                if svc["spec"].get("clusterIP") not in (None, "", "None")
                and any(p.get("port") == WEBHOOK_PORT for p in svc["spec"].get("ports") or [])
                and self.ready_endpoints(svc["metadata"]["name"])}

    def _update_revisions(self, ready: dict):
        running = {svc["metadata"]["labels"][REV_LABEL]: svc for svc in ready.values()}
        for name in set(self.revisions) - set(running):
            log.info("%s: revision %s has no ready istiod endpoints", self.name, name)
            del self.revisions[name]
        for name, service in running.items():
            if name in self.revisions:
                continue
            try:
                self.revisions[name] = self._revision(name, service)
            except (ApiError, OSError, http.client.HTTPException, StopIteration) as err:
                log.warning("%s: revision %s: cannot find istiod's identity: %r", self.name,
                            name, err)
                continue
            log.info("%s: revision %s is ready; writing as %s", self.name, name,
                     self.revisions[name].api.headers["Impersonate-User"])

    def _revision(self, name: str, service: dict) -> Revision:
        """Writes go out as the service account of the istiod pod behind the endpoints, with
        the user agent istiod sends (`pilot-discovery/<version>`)."""
        pod = next(e["targetRef"]["name"] for e in self.ready_endpoints(service["metadata"]["name"])
                   if e.get("targetRef", {}).get("kind") == "Pod")
        spec = self.api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}")["spec"]
        account = f"system:serviceaccount:{NAMESPACE}:{spec.get('serviceAccountName', 'default')}"
        version = service["metadata"]["labels"].get("app.kubernetes.io/version", "unknown")
        return Revision(name, self.api.acting_as(account, f"pilot-discovery/{version}"))

    def _real_revision(self, service: dict) -> bool:
        return bool(self.real) and self.real.handles(served(service)[1])

    def _serves(self, service: dict):
        """What a listener for the Service should serve: served(service) for the stand-in,
        plus "real istiod" while a real istiod of the revision is ready, None while none is."""
        if not self._real_revision(service):
            return served(service)
        return served(service) + ("real istiod",) if self._real_address(service) else None

    def _real_address(self, service: dict):
        process = self.real.serving(served(service)[1])
        return process.address if process else None

    def _update_listeners(self, ready: dict):
        wanted = {address: (service, self._serves(service)) for address, service in ready.items()}
        for address, listener in list(self.listeners.items()):
            if address not in wanted or wanted[address][1] != listener.serves:
                listener.close()
                del self.listeners[address]
                log.info("%s: closed", listener.where)
        for address, (service, serves) in wanted.items():
            if address not in self.listeners and serves:
                self._listen(address, service, serves)

    def _listen(self, address: str, service: dict, serves: tuple):
        revision = service["metadata"]["labels"][REV_LABEL]
        try:
            if len(serves) == 3:
                listener = Forwarder(address, WEBHOOK_PORT, *serves[:2],
                                     resolve=lambda: self._real_address(service))
            else:
                listener = Listener(self, address, service, self.standin.server_context(revision))
        except OSError as err:
            log.error("%s: cannot listen on %s:%s: %s", self.name, address, WEBHOOK_PORT, err)
            return
        self.listeners[address] = listener
        log.info("%s: listening for revision %s", listener.where, revision)

    # -------------------------------------------------------- admission

    def admit(self, path: str, review: dict, revision: str):
        """The AdmissionReview answer for `path`, or None for an unknown path."""
        route = path.split("?")[0]
        if route == "/validate" or route.startswith("/validate/"):
            return istiod_webhooks.validate(review)
        if route == "/inject" or route.startswith("/inject/"):
            try:
                values = self.injector_values(revision)
            except (ApiError, OSError, KeyError, ValueError) as err:
                return istiod_webhooks.review_response(
                    review, False, f"injector config of revision {revision}: {err}")
            return istiod_webhooks.inject(review, revision, values)
        return None

    def injector_values(self, revision: str) -> dict:
        """The `values` of the revision's injector ConfigMap, which istiod mounts."""
        name = "istio-sidecar-injector" + ("" if revision == "default" else f"-{revision}")
        running = self.revisions.get(revision)
        api = running.api if running else self.api
        config = api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}")
        return json.loads(config["data"]["values"])

    # -------------------------------------------------------- istiod's own writes

    def _of_revision(self, collection: Collection, revision: Revision) -> list:
        return [copy.deepcopy(c) for c in collection.items()
                if c["metadata"].get("labels", {}).get(REV_LABEL) == revision.name]

    def _patch_injectors(self, revision: Revision):
        """pkg/webhooks/webhookpatch.go: caBundle into webhooks named *sidecar-injector.istio.io."""
        bundle = self.standin.ca_bundle
        for config in self._of_revision(self.injectors, revision):
            hooks = [w for w in config.get("webhooks") or [] if w["name"].endswith(INJECTOR_SUFFIX)]
            if all(w["clientConfig"].get("caBundle") == bundle for w in hooks):
                continue
            for hook in hooks:
                hook["clientConfig"]["caBundle"] = bundle
            self._update(revision, "MutatingWebhookConfiguration", config)

    def _patch_validators(self, revision: Revision):
        """pkg/webhooks/validation/controller: caBundle into every webhook, and failurePolicy
        Fail once a dry run of an invalid Gateway is denied."""
        bundle = self.standin.ca_bundle
        for config in self._of_revision(self.validators, revision):
            hooks = config.get("webhooks") or []
            stale = any(w["clientConfig"].get("caBundle") != bundle for w in hooks)
            ignoring = any(w.get("failurePolicy", "Fail") != "Fail" for w in hooks)
            flip = ignoring and self._ready_for_fail_close(revision)
            if not stale and not flip:
                continue
            for hook in hooks:
                hook["clientConfig"]["caBundle"] = bundle
                if flip:
                    hook["failurePolicy"] = "Fail"
            self._update(revision, "ValidatingWebhookConfiguration", config)

    def _ready_for_fail_close(self, revision: Revision) -> bool:
        if revision.fail_close_ready:
            return True
        gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                   "metadata": {"name": "invalid-gateway", "namespace": NAMESPACE,
                                "labels": {REV_LABEL: revision.name},
                                "annotations": {istiod_webhooks.ALWAYS_REJECT: "true"}},
                   "spec": {}}
        try:
            revision.api.request(
                "POST", f"/apis/networking.istio.io/v1/namespaces/{NAMESPACE}/gateways?dryRun=All",
                gateway)
        except ApiError as err:
            revision.fail_close_ready = any(f in err.message for f in FAIL_CLOSE_READY)
            if revision.fail_close_ready:
                log.info("%s: revision %s rejected invalid config: validation fails closed "
                         "from now on", self.name, revision.name)
        except (OSError, http.client.HTTPException) as err:
            log.warning("%s: dry run of an invalid Gateway failed: %s", self.name, err)
        return revision.fail_close_ready

    def _update(self, revision: Revision, kind: str, config: dict):
        resource = kind.lower() + "s"
        config.update(apiVersion="admissionregistration.k8s.io/v1", kind=kind)
        name = config["metadata"]["name"]
        try:
            revision.api.request(
                "PUT", f"/apis/admissionregistration.k8s.io/v1/{resource}/{name}", config)
        except (ApiError, OSError, http.client.HTTPException) as err:
            log.warning("%s: update of %s %s failed (retried): %s", self.name, kind, name, err)
            return
        log.info("%s: updated %s %s (revision %s)", self.name, kind, name, revision.name)


# ---------------------------------------------------------------- the fleet

class Standin:
    """The fleet-wide part: the CA, serving certificates per revision, one agent per cluster."""

    def __init__(self, fleet: Fleet, directory: Path):
        self.dir = directory
        self.real_istiod = fleet.real_istiod
        (directory / "certs").mkdir(parents=True, exist_ok=True)
        self.ca_key, self.ca_cert = load_or_create_ca(directory)
        self.ca_bundle = base64.b64encode(_pem_cert(self.ca_cert)).decode()
        self._contexts = {}
        self._lock = threading.Lock()
        self.agents = [ClusterAgent(cluster, self) for cluster in fleet.clusters]

    def server_context(self, revision: str) -> ssl.SSLContext:
        with self._lock:
            if revision not in self._contexts:
                self._contexts[revision] = self._new_context(revision)
            return self._contexts[revision]

    def _new_context(self, revision: str) -> ssl.SSLContext:
        key, cert = issue_serving_cert(self.ca_key, self.ca_cert, revision)
        pem = self.dir / "certs" / f"{revision}.pem"
        pem.write_bytes(_pem_key(key) + _pem_cert(cert))
        pem.chmod(0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
        context.sni_callback = _remember_sni
        return context

    def start(self):
        for agent in self.agents:
            agent.start()

    def stop(self):
        """Stop the real istiods, then the process."""
        for agent in self.agents:
            agent.operators.stop()
            if agent.real:
                agent.real.stop()
        sys.exit(0)


def _remember_sni(connection, server_name, _context):
    connection.sni = server_name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localfleet.istiod_standin")
    parser.add_argument("--fleet", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    fleet = Fleet(args.fleet)
    standin = Standin(fleet, fleet.standin_dir)
    signal.signal(signal.SIGTERM, lambda *_: standin.stop())
    standin.start()
    log.info("serving fleet %s (%s); CA %s", fleet.name,
             ", ".join(a.name for a in standin.agents), fleet.standin_dir / "ca.crt")
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
