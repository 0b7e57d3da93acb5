# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""One read of a cluster (one LIST per kind) turned into a model of its mesh: revisions, tags,
namespaces, pods by the revision that really injected them, gateways, webhooks.

`read_cluster` talks to the API; everything else is pure and unit-tested on plain dicts.
"""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils import (
    helm_drift,
    injectors,
    istio_operator_spec,
    revision_usage,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.istio_names import (
    INJECTION_LABEL,
    ISTIO_OPERATOR_API,
    ISTIO_OPERATOR_CRD,
    OPERATOR_OWNER_LABEL,
    OPERATOR_OWNER_NAMESPACE_LABEL,
    OPERATOR_VERSION_LABEL,
    REV_LABEL,
    STABLE_SERVICE_LABEL,
    TAG_LABEL,
    VALIDATOR,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    HELM_RELEASE_NAME,
    HELM_RELEASE_NAMESPACE,
    HELM_RESOURCE_POLICY,
    annotations_of,
    labels_of,
    meta_of,
    ref_of,
    spec_of,
    status_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.label_selector import (
    service_selects,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.pod_readiness import is_ready
from ansible_collections.meshfleet.istio.plugins.module_utils.run_lock import (
    LEASE_API,
    LEASE_NAME,
    LEASE_NAMESPACE,
    describe,
    lock_state,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.upgrade_record import (
    RECORD_API,
    RECORD_NAME,
    RECORD_NAMESPACE,
    record_facts,
)

# Set by istioctl install and by the in-cluster operator, never by Helm (the charts' own templates
# carry the owning-resource label above too, as "unknown").
OPERATOR_MANAGED_LABEL = "operator.istio.io/managed"
MAX_NAMED = 3  # pods a problem names before it only counts them
# The parts of a Service port the stable Service keeps when it adopts a Service (nodePort too, so
# a NodePort or LoadBalancer Service keeps its node ports).
SERVICE_PORT_KEYS = ("name", "port", "targetPort", "protocol", "nodePort", "appProtocol")


def read_cluster(cluster, istio_namespace="istio-system", helm_releases=False):
    """Everything the model needs, one LIST per kind; with `helm_releases`, the Helm releases
    in the namespaces of istiod and the gateways too (helm_drift.py)."""
    raw = {
        "kubernetes_version": cluster.version().get("gitVersion", ""),
        "istio_namespace": istio_namespace,
        "namespaces": cluster.list("v1", "Namespace"),
        "pods": cluster.list("v1", "Pod"),
        # istiod and the gateways carry an istio label; a gateway chart release labels only
        # its pods with the revision.
        "deployments": cluster.list("apps/v1", "Deployment", label_selector="istio"),
        "services": cluster.list("v1", "Service"),
        "mutating_webhooks": cluster.list("admissionregistration.k8s.io/v1",
                                          "MutatingWebhookConfiguration"),
        "validating_webhooks": cluster.list("admissionregistration.k8s.io/v1",
                                            "ValidatingWebhookConfiguration"),
        "run_lock": cluster.get(LEASE_API, "Lease", LEASE_NAME, LEASE_NAMESPACE),
        "upgrade_record": cluster.get(RECORD_API, "ConfigMap", RECORD_NAME, RECORD_NAMESPACE),
        "crds": cluster.list("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                             metadata_only=True),
    }
    if any(meta_of(crd).get("name") == ISTIO_OPERATOR_CRD for crd in raw["crds"]):
        raw["istio_operators"] = cluster.list(ISTIO_OPERATOR_API, "IstioOperator")
    if helm_releases:
        namespaces = [istio_namespace] + [meta_of(d)["namespace"] for d in raw["deployments"]]
        raw["helm_releases"] = [helm_drift.summary(entry) for entry in
                                helm_drift.read_releases(cluster.api, namespaces)]
    return raw


class MeshSnapshot(object):
    """The mesh of one cluster as read at one moment."""

    def __init__(self, raw):
        self.raw = raw
        self.istio_namespace = raw["istio_namespace"]
        self.revisions = self._revisions()
        self.tags = self._tags()

    # ------------------------------------------------------------ control planes

    def _istiod_deployments(self):
        return [d for d in self.raw["deployments"]
                if meta_of(d).get("namespace") == self.istio_namespace
                and labels_of(d).get("app") == "istiod"]

    def _revisions(self):
        revisions = {}
        for deployment in self._istiod_deployments():
            labels = labels_of(deployment)
            revision = labels.get(REV_LABEL) or "default"
            status = status_of(deployment)
            wanted = spec_of(deployment).get("replicas", 1)
            ready = status.get("readyReplicas") or 0
            revisions[revision] = {
                "deployment": meta_of(deployment)["name"],
                "version": version_of(deployment),
                "replicas": wanted,
                "ready_replicas": ready,
                "ready": ready >= 1 and ready >= min(wanted, 1),
                "engine": engine_of(deployment),
            }
            if revisions[revision]["engine"] == "operator":
                revisions[revision].update(self._istio_operator_of(deployment))
        return revisions

    def _istio_operator_of(self, deployment):
        """For an operator-made istiod: the IstioOperator that owns it, and whether meshfleet
        wrote that IstioOperator (its operator engine)."""
        labels = labels_of(deployment)
        owner = labels.get(OPERATOR_OWNER_LABEL, "")
        namespace = labels.get(OPERATOR_OWNER_NAMESPACE_LABEL, self.istio_namespace)
        found = [iop for iop in self.raw.get("istio_operators", [])
                 if meta_of(iop).get("name") == owner
                 and meta_of(iop).get("namespace") == namespace]
        return {"istio_operator": owner,
                "meshfleet_operator": bool(found) and istio_operator_spec.is_meshfleets(found[0])}

    def _tags(self):
        tags = {}
        for mwc in self.raw["mutating_webhooks"]:
            labels = labels_of(mwc)
            if TAG_LABEL in labels:
                tags[labels[TAG_LABEL]] = labels.get(REV_LABEL, "")
        return tags

    def revision_names(self):
        return sorted(self.revisions)

    def resolve(self, name):
        """The revision a namespace or pod label value selects (a revision or a tag)."""
        if name in self.tags:
            return self.tags[name]
        return name

    @property
    def default_revision(self):
        return self.tags.get("default")

    def validator(self):
        for vwc in self.raw["validating_webhooks"]:
            if meta_of(vwc)["name"] == VALIDATOR:
                hooks = vwc.get("webhooks") or [{}]
                service = (hooks[0].get("clientConfig") or {}).get("service") or {}
                target = service.get("name", "")
                revision = target[len("istiod-"):] if target.startswith("istiod-") else target
                return {
                    "exists": True, "service": target, "revision": revision,
                    "label_revision": labels_of(vwc).get(REV_LABEL, ""),
                    "failure_policy": hooks[0].get("failurePolicy", ""),
                    "target_exists": self.service_exists(target),
                }
        return {"exists": False, "service": "", "revision": "", "label_revision": "",
                "failure_policy": "", "target_exists": False}

    def service_exists(self, name):
        """Whether Service `name` exists in the Istio namespace."""
        return any(ref_of(s) == (self.istio_namespace, name) for s in self.raw["services"])

    # ------------------------------------------------------------ data plane

    def namespaces(self):
        result = []
        for ns in self.raw["namespaces"]:
            labels = labels_of(ns)
            rev_label = labels.get(REV_LABEL)
            injection = labels.get(INJECTION_LABEL)
            if injection == "enabled":
                selects = self.default_revision
            elif rev_label and injection is None:
                selects = self.resolve(rev_label)
            else:
                selects = None
            result.append({"name": meta_of(ns)["name"], "rev_label": rev_label,
                           "injection_label": injection, "revision": selects})
        return result

    def injected_pods(self):
        """Pods that carry a sidecar, by the revision that injected them (its annotation)."""
        pods = []
        for pod in self.raw["pods"]:
            revision = annotations_of(pod).get(REV_LABEL)
            if not revision or status_of(pod).get("phase") == "Succeeded":
                continue
            pods.append({"namespace": meta_of(pod)["namespace"], "name": meta_of(pod)["name"],
                         "revision": revision, "owner": owner_kind(pod),
                         "phase": status_of(pod).get("phase", "")})
        return pods

    def pods_by_namespace(self):
        """Injected pods counted by namespace, then by revision."""
        counts = {}
        for pod in self.injected_pods():
            per_ns = counts.setdefault(pod["namespace"], {})
            per_ns[pod["revision"]] = per_ns.get(pod["revision"], 0) + 1
        return counts

    def pods_by_revision(self):
        counts = {}
        for pod in self.injected_pods():
            counts[pod["revision"]] = counts.get(pod["revision"], 0) + 1
        return counts

    # ------------------------------------------------------------ gateways

    def gateways(self):
        result = []
        for deployment in self.raw["deployments"]:
            if not revision_usage.is_gateway(deployment):
                continue
            status = status_of(deployment)
            revision = revision_usage.gateway_revision(deployment)
            result.append({"name": meta_of(deployment)["name"],
                           "namespace": meta_of(deployment)["namespace"],
                           "kind": labels_of(deployment)["istio"],
                           "revision": revision,
                           "helm_release": _helm_release_name(deployment),
                           "meshfleet": is_meshfleet_gateway(deployment, revision),
                           "replicas": spec_of(deployment).get("replicas", 1),
                           "ready_replicas": status.get("readyReplicas") or 0})
        return result

    def unmanaged_gateways(self):
        """Gateways meshfleet did not install: it installs its own beside them, and the prune of
        their revision removes them (Helm releases only) once nothing selects their pods."""
        found = []
        for gateway in self.gateways():
            if gateway["meshfleet"]:
                continue
            where = "%s/%s" % (gateway["namespace"], gateway["name"])
            if gateway["helm_release"]:
                fate = ("upgrade.yml removes its release %s with revision %s once nothing "
                        "selects its pods" % (gateway["helm_release"], gateway["revision"]))
            else:
                fate = ("no Helm release owns it: remove it with the tool that made it once "
                        "nothing selects its pods, or upgrade.yml stops before removing "
                        "revision %s" % gateway["revision"])
            found.append("gateway Deployment %s (revision %s) is not meshfleet's (its gateways "
                         "are Helm releases <gateway>-<revision>): %s"
                         % (where, gateway["revision"] or "?", fate))
        return found

    def istio_crds(self):
        """Istio's CRDs (groups *.istio.io) and the Helm release that owns each, if any."""
        found = []
        for crd in self.raw.get("crds", []):
            name = meta_of(crd)["name"]
            if name.endswith(".istio.io"):
                annotations = annotations_of(crd)
                found.append({"name": name,
                              "helm_release": annotations.get(HELM_RELEASE_NAME, ""),
                              "helm_release_namespace": annotations.get(HELM_RELEASE_NAMESPACE,
                                                                        "")})
        return found

    def stable_services(self):
        return [s for s in self.raw["services"] if STABLE_SERVICE_LABEL in labels_of(s)]

    def gateway_services(self):
        """meshfleet's stable gateway Services and the revision each serves (its selector's)."""
        result = []
        for service in self.stable_services():
            selector = spec_of(service).get("selector") or {}
            result.append(dict(_service_facts(service), kind=selector.get("istio", ""),
                               serving_revision=selector.get(REV_LABEL, "")))
        return result

    def hand_made_gateway_services(self):
        """Services that no Helm release made and meshfleet does not keep, that select gateway
        pods: what they serve is read from the pods they select (their istio.io/rev labels;
        '' unless exactly one revision)."""
        gateway_pods = self._gateway_pods()
        result = []
        for service in self.raw["services"]:
            if (STABLE_SERVICE_LABEL in labels_of(service)
                    or HELM_RELEASE_NAME in annotations_of(service)):
                continue
            selector = spec_of(service).get("selector") or {}
            selected = [pod for pod in gateway_pods
                        if meta_of(pod).get("namespace") == meta_of(service).get("namespace")
                        and service_selects(selector, labels_of(pod))]
            if not selected:
                continue
            revisions = sorted({labels_of(pod).get(REV_LABEL, "") for pod in selected})
            result.append(dict(_service_facts(service), selector=selector,
                               kind=labels_of(selected[0]).get("istio", ""),
                               serving_revision=revisions[0] if len(revisions) == 1 else "",
                               ready_pods=len([p for p in selected if is_ready(p)])))
        return result

    def _gateway_pods(self):
        pods = set()
        for deployment in self.raw["deployments"]:
            if revision_usage.is_gateway(deployment):
                pods |= revision_usage.pods_of(self.raw, deployment)
        return [pod for pod in self.raw["pods"] if ref_of(pod) in pods]

    # ------------------------------------------------------------ webhooks

    def helm_tag_objects(self):
        """Tag webhook configurations and tag Services a Helm release renders (an istiod release
        with `revisionTags`), each with its release: upgrading that release with values that
        render no tags would delete them."""
        found = []
        kinds = (("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                  self.raw["mutating_webhooks"]), ("v1", "Service", self.raw["services"]))
        for api_version, kind, objects in kinds:
            for obj in objects:
                if TAG_LABEL in labels_of(obj) and HELM_RELEASE_NAME in annotations_of(obj):
                    entry = {"apiVersion": api_version, "kind": kind,
                             "name": meta_of(obj)["name"], "tag": labels_of(obj)[TAG_LABEL],
                             "release": annotations_of(obj)[HELM_RELEASE_NAME],
                             "kept": annotations_of(obj).get(HELM_RESOURCE_POLICY) == "keep"}
                    if meta_of(obj).get("namespace"):
                        entry["namespace"] = meta_of(obj)["namespace"]
                    found.append(entry)
        return found

    def injection_webhooks(self):
        """Active injection webhooks: (configuration, webhook name, what it claims)."""
        claims = []
        for mwc in self.raw["mutating_webhooks"]:
            for hook in mwc.get("webhooks") or []:
                if "sidecar-injector.istio.io" not in hook.get("name", ""):
                    continue
                for claim in webhook_claims(hook):
                    claims.append((meta_of(mwc)["name"], hook["name"], claim))
        return claims

    def overlapping_webhooks(self):
        by_claim = {}
        for config, hook, claim in self.injection_webhooks():
            by_claim.setdefault(claim, set()).add(config)
        return [{"claim": claim, "configurations": sorted(configs)}
                for claim, configs in sorted(by_claim.items()) if len(configs) > 1]

    def orphaned_webhooks(self):
        """Injection webhook configurations whose istiod Service does not exist."""
        orphans = []
        for mwc in self.raw["mutating_webhooks"]:
            for hook in mwc.get("webhooks") or []:
                service = (hook.get("clientConfig") or {}).get("service") or {}
                if ("sidecar-injector.istio.io" in hook.get("name", "")
                        and service.get("namespace") == self.istio_namespace
                        and not self.service_exists(service.get("name", ""))
                        and not injectors.is_neutralised(hook)):
                    orphans.append({"configuration": meta_of(mwc)["name"],
                                    "service": service.get("name", "")})
                    break
        return orphans

    # ------------------------------------------------------------ in-use rule

    def uses_of(self, revision):
        """Why a revision is in use (an empty list: nothing uses it): revision_usage's rule."""
        return revision_usage.uses_of(self, revision)

    # ------------------------------------------------------------ runs

    def lock(self):
        """The run lock: who holds the cluster and whether that run is alive."""
        state = lock_state(self.raw.get("run_lock"))
        state["summary"] = describe(state)
        return state

    def upgrade_record(self):
        """The last upgrade's phase, revision and run, with the history of its transitions."""
        return record_facts(self.raw.get("upgrade_record"))

    def run_problems(self):
        """A lock left by a run that died, and an upgrade that stopped half-way."""
        found = []
        lock = self.lock()
        if lock["state"] in ("stale", "expired"):
            found.append("run lock left by %s: %s; it stopped renewing %ss ago. A run takes an "
                         "expired lock by itself; to take it sooner, rerun with "
                         "meshfleet_break_lock=%s"
                         % (lock["holder"], lock["state"], lock["age_seconds"], lock["holder"]))
        record = self.upgrade_record()
        if record.get("phase") in ("started", "failed") and lock["state"] != "live":
            found.append("the upgrade to %s by run %s %s (%s) and did not finish: run upgrade.yml "
                         "again to finish it, or rollback.yml to go back"
                         % (record.get("revision"), record.get("run_id"),
                            "failed" if record["phase"] == "failed" else "stopped",
                            record.get("updated")))
        return found

    # ------------------------------------------------------------ summary

    def engine(self):
        engines = sorted({r["engine"] for r in self.revisions.values()})
        if not engines:
            return "none"
        return engines[0] if len(engines) == 1 else "mixed"

    def facts(self):
        revisions = {}
        for name, info in self.revisions.items():
            entry = dict(info)
            entry["tags"] = sorted(t for t, r in self.tags.items() if r == name)
            entry["in_use"] = self.uses_of(name)
            revisions[name] = entry
        return {
            "kubernetes_version": self.raw["kubernetes_version"],
            "istio_namespace": self.istio_namespace,
            "engine": self.engine(),
            "revisions": revisions,
            "tags": dict(self.tags),
            "default_revision": self.default_revision,
            "validator": self.validator(),
            "namespaces": [ns for ns in self.namespaces()
                           if ns["rev_label"] or ns["injection_label"]],
            "pods_by_revision": self.pods_by_revision(),
            "pods_by_namespace": self.pods_by_namespace(),
            "gateways": self.gateways(),
            "gateway_services": self.gateway_services(),
            "hand_made_gateway_services": self.hand_made_gateway_services(),
            "istio_crds": self.istio_crds(),
            "helm_tag_objects": self.helm_tag_objects(),
            "helm_releases": self.raw.get("helm_releases", []),
            "overlapping_webhooks": self.overlapping_webhooks(),
            "orphaned_webhooks": self.orphaned_webhooks(),
            "lock": self.lock(),
            "upgrade_record": self.upgrade_record(),
            "problems": self.problems() + self.run_problems(),
        }

    def problems(self):
        found = []
        validator = self.validator()
        if validator["exists"] and not validator["target_exists"]:
            found.append("validator %s points at Service %s, which does not exist: every Istio "
                         "resource write fails or skips validation"
                         % (VALIDATOR, validator["service"] or "(none)"))
        for tag, revision in sorted(self.tags.items()):
            if revision not in self.revisions:
                found.append("tag %s points at revision %s, which is not installed" % (tag, revision))
        for overlap in self.overlapping_webhooks():
            found.append("injection webhooks overlap on %s: %s"
                         % (overlap["claim"], ", ".join(overlap["configurations"])))
        for orphan in self.orphaned_webhooks():
            found.append("webhook configuration %s targets missing Service %s"
                         % (orphan["configuration"], orphan["service"]))
        found += self.unmanaged_control_planes() + self.unmanaged_gateways()
        return (found + self.injection_problems() + self.gateway_service_problems()
                + helm_drift.problems(self.raw.get("helm_releases", [])))

    def unmanaged_control_planes(self):
        """istiod Deployments meshfleet will not converge: made by istioctl or an IstioOperator,
        or a non-revisioned Helm release (meshfleet's are revisioned)."""
        found = []
        for name, facts in sorted(self.revisions.items()):
            if facts["engine"] == "istioctl":
                found.append("istiod %s (Deployment %s, Istio %s) was installed by istioctl, not "
                             "Helm: meshfleet does not manage it; upgrade.yml takes it over"
                             % (name, facts["deployment"], facts["version"] or "?"))
            elif facts["engine"] == "helm" and name == "default":
                found.append("istiod default (Deployment %s, Istio %s) is a non-revisioned Helm "
                             "release meshfleet did not install: meshfleet does not manage it; "
                             "upgrade.yml takes it over"
                             % (facts["deployment"], facts["version"] or "?"))
            elif facts["engine"] == "operator" and not facts.get("meshfleet_operator"):
                found.append("istiod %s (Deployment %s, Istio %s) is managed by an IstioOperator "
                             "meshfleet did not write: meshfleet does not manage it"
                             % (name, facts["deployment"], facts["version"] or "?"))
        return found

    # ------------------------------------------------------------ the invariants

    def injection_problems(self):
        """Namespaces that ask for injection without exactly one injector of a Ready revision,
        and pods there that run without a sidecar."""
        hooks = injectors.injector_hooks(self.raw["mutating_webhooks"])
        found = []
        for namespace in self.raw["namespaces"]:
            labels = labels_of(namespace)
            if not injectors.asks_for_injection(labels):
                continue
            name = meta_of(namespace)["name"]
            injector_problem = self._injector_problem(name, labels,
                                                      injectors.injectors_of(hooks, labels, {}))
            found += [injector_problem] if injector_problem else []
            found += self._sidecarless_pods_problem(name)
        return found

    def _injector_problem(self, name, labels, serving):
        asked = ("istio-injection=enabled" if labels.get(INJECTION_LABEL) == "enabled"
                 else "istio.io/rev=%s" % labels.get(REV_LABEL))
        if not serving:
            return ("namespace %s asks for injection (%s) but no injection webhook selects it: "
                    "its new pods start without a sidecar; %s"
                    % (name, asked, self._missing_injector_way_out(labels)))
        if len(serving) > 1:
            configurations = ", ".join(sorted(pair[0] for pair in serving))
            return ("namespace %s asks for injection (%s) and %d webhook configurations select "
                    "it (%s): remove all but one" % (name, asked, len(serving), configurations))
        configuration, revision = serving[0]
        if not self.revisions.get(revision, {}).get("ready"):
            return ("namespace %s asks for injection (%s) through %s, whose revision %s has no "
                    "Ready istiod: pods created there fail or start without a sidecar"
                    % (name, asked, configuration, revision or "(unknown)"))
        return None

    def _missing_injector_way_out(self, labels):
        if labels.get(INJECTION_LABEL) == "enabled":
            return "the default tag is missing: run install.yml to create it again"
        return ("tag or revision %s does not exist: run install.yml, or label the namespace with "
                "an installed revision or tag" % labels.get(REV_LABEL))

    def _sidecarless_pods_problem(self, namespace):
        pods = injectors.pods_without_sidecar(self.raw["pods"], namespace)
        if not pods:
            return []
        named = ", ".join(pods[:MAX_NAMED]) + (", ..." if len(pods) > MAX_NAMED else "")
        return ["namespace %s asks for injection but %d pod(s) run without a sidecar (%s): "
                "restart their workloads to inject them" % (namespace, len(pods), named)]

    def gateway_service_problems(self):
        """Stable gateway Services that select no Ready pod."""
        found = []
        for service in self.stable_services():
            selector = spec_of(service).get("selector") or {}
            namespace = meta_of(service).get("namespace")
            ready = [pod for pod in self.raw["pods"]
                     if meta_of(pod).get("namespace") == namespace
                     and service_selects(selector, labels_of(pod)) and is_ready(pod)]
            if not ready:
                found.append("stable gateway Service %s/%s selects no Ready pod (selector %s): "
                             "traffic to it has nowhere to go"
                             % (namespace, meta_of(service)["name"],
                                ",".join("%s=%s" % item for item in sorted(selector.items()))
                                or "none"))
        return found


def _helm_release_name(obj):
    annotations = annotations_of(obj)
    if HELM_RELEASE_NAME not in annotations:
        return ""
    return "%s/%s" % (annotations.get(HELM_RELEASE_NAMESPACE) or meta_of(obj).get("namespace"),
                      annotations[HELM_RELEASE_NAME])


def is_meshfleet_gateway(deployment, revision):
    """Whether a gateway Deployment is the way meshfleet installs one: the Helm release
    <gateway>-<revision> of its own name, in its own namespace."""
    name = meta_of(deployment)["name"]
    return (bool(revision) and name.endswith("-" + revision)
            and _helm_release_name(deployment) == "%s/%s" % (meta_of(deployment)["namespace"],
                                                             name))


def _service_facts(service):
    return {"name": meta_of(service)["name"], "namespace": meta_of(service)["namespace"],
            "type": spec_of(service).get("type", ""),
            "ports": [dict((key, port[key]) for key in SERVICE_PORT_KEYS if key in port)
                      for port in spec_of(service).get("ports") or []]}


def engine_of(deployment):
    """operator (an IstioOperator owns it), istioctl (installed by istioctl install, whose
    objects also say managed-by Helm), helm, or istioctl for objects that say nothing."""
    labels = labels_of(deployment)
    owner = labels.get(OPERATOR_OWNER_LABEL, "unknown")
    if owner not in ("", "unknown"):
        return "operator"
    if OPERATOR_MANAGED_LABEL in labels:
        return "istioctl"
    if labels.get("app.kubernetes.io/managed-by") == "Helm":
        return "helm"
    return "istioctl"


def version_of(deployment):
    """The Istio version of an istiod Deployment: istioctl and the operator stamp it; a packaged
    chart gives its appVersion (istioctl's embedded charts say 1.0.0, so theirs comes first)."""
    labels = labels_of(deployment)
    return labels.get(OPERATOR_VERSION_LABEL) or labels.get("app.kubernetes.io/version", "")


def owner_kind(pod):
    owners = meta_of(pod).get("ownerReferences") or []
    return owners[0]["kind"] if owners else "Pod"


def webhook_claims(hook):
    """What a sidecar-injector webhook matches, as comparable claims."""
    if injectors.is_neutralised(hook):
        return []
    claims = []
    for selector_name in ("namespaceSelector", "objectSelector"):
        for expr in (hook.get(selector_name) or {}).get("matchExpressions") or []:
            if expr.get("operator") != "In":
                continue
            for value in expr.get("values") or []:
                claims.append("%s %s=%s" % (selector_name[:-8], expr["key"], value))
    return claims
