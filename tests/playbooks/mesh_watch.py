"""Proof at every step: a watcher that checks the mesh's invariants on every cluster, over and
over, while a playbook changes it, and records every violation it sees."""

import threading

from kubernetes import client

from localfleet.pytest_plugin import api_client


# What the apiserver would admit in a namespace at this moment: created as a server-side dry run,
# so it passes the injection webhooks (and comes back injected) without being stored.
PROBE_POD = {"metadata": {"generateName": "mesh-watch-probe-"},
             "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}}


def asks_for_injection(labels):
    """istio-injection=enabled, or istio.io/rev without an istio-injection label."""
    if "istio-injection" in labels:
        return labels["istio-injection"] == "enabled"
    return bool(labels.get("istio.io/rev"))


class MeshWatch:
    """Polls each cluster while active; `violations` lists what was ever found broken.

    Every poll also creates a pod as a server-side dry run in every namespace that asks for
    injection: it must come back injected, so injection never lapses (`injection_probes` counts
    the probes that came back injected). Every stable gateway Service, and each of `services`
    ((namespace, name): hand-made ones), must select a Ready pod."""

    def __init__(self, fleet, old_revision, interval=1.0, services=()):
        self.apis = {c.spec.name: api_client(fleet, c.spec.name) for c in fleet.clusters}
        self.old_revision = old_revision
        self.interval = interval
        self.violations = []
        self.seen = set()
        self.injection_probes = 0
        self.services = set(services)  # (namespace, name) watched besides the stable Services
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def _run(self):
        while not self._stop.is_set():
            for name, api in self.apis.items():
                try:
                    self.check(name, api)
                except client.ApiException:
                    pass  # an apiserver that tests stop on purpose
                except Exception as error:  # noqa: BLE001 - keep watching, report it
                    self.violations.append(f"{name}: watcher error {error!r}")
            self._stop.wait(self.interval)

    def check(self, name, api):
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        adm = client.AdmissionregistrationV1Api(api)
        tags = {m.metadata.labels["istio.io/tag"]: m.metadata.labels["istio.io/rev"]
                for m in adm.list_mutating_webhook_configuration().items
                if "istio.io/tag" in (m.metadata.labels or {})}
        ready = {d.metadata.labels["istio.io/rev"] for d in apps.list_namespaced_deployment(
            "istio-system", label_selector="app=istiod").items if (d.status.ready_replicas or 0) > 0}
        installed = {d.metadata.labels["istio.io/rev"] for d in apps.list_namespaced_deployment(
            "istio-system", label_selector="app=istiod").items}
        self.seen.add((name, frozenset(installed), tags.get("prod-stable")))
        for ns in core.list_namespace(label_selector="istio.io/rev").items:
            label = ns.metadata.labels["istio.io/rev"]
            revision = tags.get(label, label)
            if revision not in ready:
                self.violations.append(f"{name}: namespace {ns.metadata.name} selects {label} -> "
                                       f"{revision}, which is not Ready")
        for ns in core.list_namespace().items:
            if ns.status.phase != "Terminating" and asks_for_injection(ns.metadata.labels or {}):
                self.probe_injection(name, core, ns.metadata.name, installed)
        for svc in core.list_service_for_all_namespaces().items:
            if ("meshfleet.io/stable-gateway" not in (svc.metadata.labels or {})
                    and (svc.metadata.namespace, svc.metadata.name) not in self.services):
                continue
            selector = ",".join(f"{k}={v}" for k, v in svc.spec.selector.items())
            pods = core.list_namespaced_pod(svc.metadata.namespace, label_selector=selector).items
            if not any(_ready(p) for p in pods):
                self.violations.append(f"{name}: Service {svc.metadata.name} ({selector}) "
                                       "selects no Ready pod")
        if self.old_revision not in installed:
            users = [f"{p.metadata.namespace}/{p.metadata.name}"
                     for p in core.list_pod_for_all_namespaces().items
                     if (p.metadata.annotations or {}).get("istio.io/rev") == self.old_revision
                     and p.status.phase not in ("Succeeded",)]
            if users or self.old_revision in tags.values():
                self.violations.append(f"{name}: {self.old_revision} removed while used by "
                                       f"{users or 'a tag'}")


    def probe_injection(self, name, core, namespace, installed):
        try:
            pod = core.create_namespaced_pod(namespace, PROBE_POD, dry_run="All")
        except client.ApiException as error:
            if error.status == 404 or "being terminated" in (error.body or ""):
                return  # the namespace went away meanwhile
            self.violations.append(f"{name}: a pod created in {namespace} would be refused: "
                                   f"{error.status} {(error.body or '')[:300]}")
            return
        injected = (pod.metadata.annotations or {}).get("istio.io/rev")
        if injected not in installed:
            self.violations.append(f"{name}: a pod created in {namespace} would start "
                                   f"{'without a sidecar' if not injected else 'injected by ' + injected}")
            return
        self.injection_probes += 1


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
