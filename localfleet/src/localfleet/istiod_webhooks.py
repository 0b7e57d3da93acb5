"""What the istiod stand-in answers to the apiserver's admission calls: `/inject` (a JSON patch
that injects a sidecar the way istiod's `sidecar` and `gateway` templates do, reduced to what
the collection can observe) and `/validate` (accept well-formed Istio resources, reject
malformed ones with istiod's messages). Pure functions: no I/O.

Sources: istio.io/istio 1.31 pkg/kube/inject (inject.go, webhook.go) and the injection
templates in the istiod chart; pkg/webhooks/validation/server.
"""

import base64
import json

PROXY = "istio-proxy"
INIT = "istio-init"
TEMPLATES = ("sidecar", "gateway")
IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease",
                                "local-path-storage"})
KNOWN_IMAGE_TYPES = ("distroless", "debug")
ISTIO_GROUPS = frozenset({"networking.istio.io", "security.istio.io", "telemetry.istio.io",
                          "extensions.istio.io"})
TOP_LEVEL_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
ALWAYS_REJECT = "internal.istio.io/webhook-always-reject"

# The volumes of istiod's sidecar and gateway templates, and where the proxy mounts them.
VOLUMES = [
    {"name": "workload-socket", "emptyDir": {}},
    {"name": "credential-socket", "emptyDir": {}},
    {"name": "workload-certs", "emptyDir": {}},
    {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
    {"name": "istio-data", "emptyDir": {}},
    {"name": "istio-podinfo", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}},
    {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}},
    {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
]
# The sidecar template's alone (the gateway template has no CRL volume).
SIDECAR_VOLUMES = [{"name": "istio-ca-crl", "configMap": {"name": "istio-ca-crl", "optional": True}}]
SIDECAR_MOUNTS = [{"name": "istio-ca-crl", "mountPath": "/var/run/secrets/istio/crl"}]
MOUNTS = [
    {"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"},
    {"name": "credential-socket", "mountPath": "/var/run/secrets/credential-uds"},
    {"name": "workload-certs", "mountPath": "/var/run/secrets/workload-spiffe-credentials"},
    {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
    {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
    {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
    {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
    {"name": "istio-podinfo", "mountPath": "/etc/istio/pod"},
]


# ---------------------------------------------------------------- responses

def review_response(review: dict, allowed: bool, message: str = None, patch: list = None) -> dict:
    response = {"uid": review["request"]["uid"], "allowed": allowed}
    if message:
        response["status"] = {"message": message}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview", "response": response}


# ---------------------------------------------------------------- /validate

def validate(review: dict) -> dict:
    request = review["request"]
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return review_response(review, True)
    problem = config_problem(request.get("object"), request.get("namespace", ""))
    return review_response(review, problem is None, problem)


def config_problem(obj, namespace: str = ""):
    """istiod's reason to reject an Istio resource, or None when it is well-formed."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
        return "cannot decode configuration: the object is not a JSON object with metadata"
    api_version, kind = str(obj.get("apiVersion", "")), obj.get("kind")
    if api_version.partition("/")[0] not in ISTIO_GROUPS or not kind:
        return f"unrecognized type {api_version}, Kind={kind}"
    if not isinstance(obj.get("spec", {}), dict):
        return f"error decoding configuration: spec of {kind} is not an object"
    metadata = obj.get("metadata", {})
    if ALWAYS_REJECT in (metadata.get("annotations") or {}):
        return f'configuration is invalid: "{ALWAYS_REJECT}" annotation found, rejecting'
    unknown = sorted(set(obj) - TOP_LEVEL_FIELDS)
    if unknown:
        return (f'unknown field "{unknown[0]}" on {kind} resource '
                f'{metadata.get("namespace", namespace)}/{metadata.get("name", "")}')
    return None


# ---------------------------------------------------------------- /inject

def inject(review: dict, revision: str, values: dict) -> dict:
    """Answer an injection request for `revision`, whose injector values are `values`."""
    request = review["request"]
    pod = request.get("object") or {}
    if not injection_required(pod, request.get("namespace", "")):
        return review_response(review, True)
    templates = requested_templates(pod)
    unknown = [t for t in templates if t not in TEMPLATES]
    if unknown:
        message = (f"requested template {unknown[0]!r} not found; "
                   f"the istiod stand-in renders {list(TEMPLATES)}")
        return review_response(review, False, message)
    return review_response(review, True, patch=injection_patch(pod, revision, values, templates))


def injection_required(pod: dict, namespace: str) -> bool:
    """istiod's injectRequired with its default policy `enabled` and no selectors."""
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if pod.get("spec", {}).get("hostNetwork") or namespace in IGNORED_NAMESPACES:
        return False
    if "sidecar.istio.io/status" in annotations:
        return False
    labels = metadata.get("labels") or {}
    wanted = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject"))
    return wanted != "false"


def requested_templates(pod: dict) -> list:
    annotations = pod.get("metadata", {}).get("annotations") or {}
    listed = annotations.get("inject.istio.io/templates", "sidecar")
    return [t.strip() for t in listed.split(",") if t.strip()]


def proxy_image(values: dict, annotations: dict, image_key: str = "proxy") -> str:
    """`<hub>/<image>:<tag>[-<variant>]` as istiod's ProxyImage/ProxyInitImage compose it; a
    `sidecar.istio.io/proxyImage` annotation holding a full reference wins, as in the templates."""
    glob = values.get("global", {})
    name = glob.get(image_key, {}).get("image") or "proxyv2"
    override = annotations.get("sidecar.istio.io/proxyImage", name)
    if "/" in override:
        return override
    image_type = annotations.get("sidecar.istio.io/proxyImageType", glob.get("variant", ""))
    return f"{glob.get('hub', '')}/{name}:{tagged(str(glob.get('tag', '')), image_type)}"


def tagged(tag: str, image_type: str) -> str:
    if not image_type:
        return tag
    for known in KNOWN_IMAGE_TYPES:
        if tag.endswith("-" + known):
            tag = tag[:-len(known) - 1]
            break
    return tag if image_type == "default" else f"{tag}-{image_type}"


def istiod_address(revision: str, values: dict) -> str:
    namespace = values.get("global", {}).get("istioNamespace", "istio-system")
    service = "istiod" if revision in ("", "default") else f"istiod-{revision}"
    return f"{service}.{namespace}.svc:15012"


def proxy_container(image: str, revision: str, values: dict) -> dict:
    proxy = values.get("global", {}).get("proxy", {})
    return {
        "name": PROXY, "image": image,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 f"--proxyLogLevel={proxy.get('logLevel', 'warning')}"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "env": [{"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
                {"name": "CA_ADDR", "value": istiod_address(revision, values)},
                _field_env("POD_NAME", "metadata.name"),
                _field_env("POD_NAMESPACE", "metadata.namespace"),
                _field_env("INSTANCE_IP", "status.podIP")],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021},
                           "periodSeconds": 15, "failureThreshold": 4},
        "resources": proxy.get("resources", {}),
        "securityContext": {"runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": MOUNTS,
    }


def _field_env(name: str, path: str) -> dict:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def init_container(image: str) -> dict:
    return {"name": INIT, "image": image,
            "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m",
                     "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"],
            "securityContext": {"runAsUser": 0, "runAsNonRoot": False,
                                "capabilities": {"add": ["NET_ADMIN", "NET_RAW"],
                                                 "drop": ["ALL"]}}}


def proxy_mounts(sidecar: bool) -> list:
    """The proxy's mounts; the sidecar template adds the CRL right after the CA certificate."""
    if not sidecar:
        return MOUNTS
    after = next(i for i, m in enumerate(MOUNTS) if m["name"] == "istiod-ca-cert") + 1
    return MOUNTS[:after] + SIDECAR_MOUNTS + MOUNTS[after:]


def injection_patch(pod: dict, revision: str, values: dict, templates: list) -> list:
    """The JSON patch: proxy container (or, when the pod already names one, as gateways do
    with image `auto`, its image and mounts), istio-init for the sidecar template, volumes,
    image pull secrets, labels and the istio.io/rev and sidecar.istio.io/status annotations."""
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    annotations = metadata.get("annotations") or {}
    ops, added = [], {"initContainers": None, "containers": [PROXY]}
    sidecar = "gateway" not in templates
    volumes = VOLUMES + (SIDECAR_VOLUMES if sidecar else [])
    proxy = proxy_container(proxy_image(values, annotations), revision, values)
    proxy["volumeMounts"] = proxy_mounts(sidecar)
    _add_proxy(ops, spec, proxy,
               values.get("global", {}).get("proxy", {}).get("holdApplicationUntilProxyStarts"))
    if sidecar:
        added["initContainers"] = [INIT]
        _append(ops, "/spec/initContainers", spec.get("initContainers"),
                [init_container(proxy_image(values, annotations, "proxy_init"))])
    _append(ops, "/spec/volumes", spec.get("volumes"), _missing(spec.get("volumes"), volumes))
    added["volumes"] = [v["name"] for v in volumes]
    secrets = [{"name": s} for s in values.get("global", {}).get("imagePullSecrets") or []]
    _append(ops, "/spec/imagePullSecrets", spec.get("imagePullSecrets"),
            _missing(spec.get("imagePullSecrets"), secrets))
    added["imagePullSecrets"] = [s["name"] for s in secrets] or None
    added["revision"] = revision or "default"
    _set_entries(ops, "/metadata/labels", metadata.get("labels"), injected_labels(pod))
    _set_entries(ops, "/metadata/annotations", metadata.get("annotations"),
                 injected_annotations(pod, revision, added, sidecar))
    return ops


def _add_proxy(ops: list, spec: dict, proxy: dict, first: bool) -> None:
    containers = spec.get("containers") or []
    names = [c.get("name") for c in containers]
    if PROXY not in names:
        ops.append({"op": "add", "path": "/spec/containers/" + ("0" if first else "-"),
                    "value": proxy})
        return
    index = names.index(PROXY)
    ops.append({"op": "add", "path": f"/spec/containers/{index}/image", "value": proxy["image"]})
    current = containers[index].get("volumeMounts")
    paths = {m.get("mountPath") for m in current or []}
    mounts = [m for m in _missing(current, proxy["volumeMounts"]) if m["mountPath"] not in paths]
    _append(ops, f"/spec/containers/{index}/volumeMounts", current, mounts)


def injected_labels(pod: dict) -> dict:
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    fallback_name = (metadata.get("name") or metadata.get("generateName") or "").rstrip("-")
    return {
        "security.istio.io/tlsMode": "istio",
        "service.istio.io/canonical-name": labels.get("service.istio.io/canonical-name")
        or labels.get("app.kubernetes.io/name") or labels.get("app") or fallback_name,
        "service.istio.io/canonical-revision": labels.get("service.istio.io/canonical-revision")
        or labels.get("app.kubernetes.io/version") or labels.get("version") or "latest",
    }


def injected_annotations(pod: dict, revision: str, added: dict, sidecar: bool) -> dict:
    current = pod.get("metadata", {}).get("annotations") or {}
    entries = {"istio.io/rev": revision or "default",
               "sidecar.istio.io/status": json.dumps(added, separators=(",", ":"))}
    apps = [c.get("name") for c in pod.get("spec", {}).get("containers") or []
            if c.get("name") != PROXY]
    if sidecar and apps:
        for key in ("kubectl.kubernetes.io/default-logs-container",
                    "kubectl.kubernetes.io/default-container"):
            if key not in current:
                entries[key] = apps[0]
    return entries


# ---------------------------------------------------------------- JSON patch helpers

def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _missing(current, items: list) -> list:
    present = {i.get("name") for i in current or []}
    return [i for i in items if i["name"] not in present]


def _append(ops: list, path: str, current, items: list) -> None:
    if not items:
        return
    if current is None:
        ops.append({"op": "add", "path": path, "value": list(items)})
        return
    ops.extend({"op": "add", "path": f"{path}/-", "value": item} for item in items)


def _set_entries(ops: list, path: str, current, entries: dict) -> None:
    if current is None:
        ops.append({"op": "add", "path": path, "value": dict(entries)})
        return
    ops.extend({"op": "add", "path": f"{path}/{_pointer(k)}", "value": v}
               for k, v in entries.items())
