# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The record of a converged install, and the check that lets a converged cluster's re-run end
after one read.

When install.yml has converged a cluster it records, in a ConfigMap beside the upgrade record,
a digest of the run's inputs and a fingerprint of what the run left: one short hash per object
whose fields meshfleet sets or decides by (the Istio namespaces and every namespace labelled for
injection, the Services of the gateway namespaces, Istio's webhooks, CRDs and Deployments, the
Helm release records of the mesh's namespaces, the mesh-wide config objects). A later run whose
inputs hash the same, that finds the same fingerprint and a healthy mesh, would change nothing,
so it ends there. Any write to one of those objects (a drifted Service, a `helm upgrade` by hand,
a deleted tag) changes its hash, and the run converges in full.

The hashes leave out what the API server and istiod change by themselves (resourceVersion,
managedFields, status, a webhook's caBundle and failurePolicy, a Service's cluster IPs, a
Deployment's replica count and its pod template's annotations), so neither they nor pods coming
and going make a converged cluster look changed.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from ansible_collections.meshfleet.istio.plugins.module_utils import revision_usage
from ansible_collections.meshfleet.istio.plugins.module_utils.k8s_objects import (
    annotations_of,
    labels_of,
    meta_of,
    pod_template_labels,
    spec_of,
)

RECORD_API = "v1"
RECORD_NAMESPACE = "kube-system"
RECORD_NAME = "meshfleet-install"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
HASH_LENGTH = 16
MANAGED_BY = {"app.kubernetes.io/managed-by": "meshfleet"}
INJECTION_LABELS = ("istio-injection", "istio.io/rev")
WEBHOOK_KINDS = (("MutatingWebhookConfiguration", "mutating_webhooks"),
                 ("ValidatingWebhookConfiguration", "validating_webhooks"))
WEBHOOK_SET_BY_ISTIOD = ("failurePolicy",)
CLIENT_CONFIG_SET_BY_ISTIOD = ("caBundle",)
SERVICE_SPEC_SET_BY_SERVER = ("clusterIP", "clusterIPs")
HELM_NAMESPACES_ALWAYS = ("kube-system",)  # istio-cni's release (OpenShift)
DIFFERENCES_NAMED = 5


def digest(value):
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _metadata_part(obj):
    return {"labels": labels_of(obj), "annotations": annotations_of(obj)}


def _namespace_parts(raw, names):
    named = set(names)
    found = {}
    for namespace in raw["namespaces"]:
        name = meta_of(namespace)["name"]
        labels = labels_of(namespace)
        if name in named or any(label in labels for label in INJECTION_LABELS):
            found["Namespace/%s" % name] = digest(_metadata_part(namespace))
    for name in named:
        found.setdefault("Namespace/%s" % name, "absent")
    return found


def gateway_namespaces(raw):
    """The namespaces of the gateway Deployments and of meshfleet's stable Services."""
    namespaces = set(meta_of(d)["namespace"] for d in raw["deployments"]
                     if revision_usage.is_gateway(d))
    namespaces.update(meta_of(s)["namespace"] for s in raw["services"]
                      if _is_meshfleets(s))
    return namespaces


def _is_meshfleets(obj):
    labels = labels_of(obj)
    return all(labels.get(key) == value for key, value in MANAGED_BY.items())


def _service_parts(raw):
    namespaces = gateway_namespaces(raw)
    found = {}
    for service in raw["services"]:
        meta = meta_of(service)
        if meta["namespace"] not in namespaces:
            continue
        spec = dict((key, value) for key, value in spec_of(service).items()
                    if key not in SERVICE_SPEC_SET_BY_SERVER)
        found["Service/%s/%s" % (meta["namespace"], meta["name"])] = digest(
            dict(_metadata_part(service), spec=spec))
    return found


def _is_istio_webhook(configuration):
    labels = labels_of(configuration)
    name = meta_of(configuration)["name"]
    return "istio" in name or "istio.io/rev" in labels or "istio.io/tag" in labels


def _webhook_without_istiod_fields(hook):
    kept = dict((key, value) for key, value in hook.items() if key not in WEBHOOK_SET_BY_ISTIOD)
    kept["clientConfig"] = dict((key, value) for key, value in
                                (hook.get("clientConfig") or {}).items()
                                if key not in CLIENT_CONFIG_SET_BY_ISTIOD)
    return kept


def _webhook_parts(raw):
    found = {}
    for kind, key in WEBHOOK_KINDS:
        for configuration in raw[key]:
            if not _is_istio_webhook(configuration):
                continue
            hooks = [_webhook_without_istiod_fields(hook)
                     for hook in configuration.get("webhooks") or []]
            found["%s/%s" % (kind, meta_of(configuration)["name"])] = digest(
                dict(_metadata_part(configuration), webhooks=hooks))
    return found


def _deployment_parts(raw):
    found = {}
    for deployment in raw["deployments"]:
        meta = meta_of(deployment)
        containers = ((spec_of(deployment).get("template") or {}).get("spec") or {}).get(
            "containers") or []
        found["Deployment/%s/%s" % (meta["namespace"], meta["name"])] = digest({
            "labels": labels_of(deployment), "pod_labels": pod_template_labels(deployment),
            "images": [container.get("image") for container in containers]})
    return found


def _crd_parts(raw):
    return dict(("CustomResourceDefinition/%s" % meta_of(crd)["name"], digest(_metadata_part(crd)))
                for crd in raw["crds"] if meta_of(crd)["name"].endswith(".istio.io"))


def read_helm_records(cluster, namespaces):
    """{namespace: [(Secret name, status label)]} of the Helm release records, one
    metadata-only LIST per namespace: every helm install, upgrade or rollback adds a record."""
    records = {}
    for namespace in sorted(set(namespaces) | set(HELM_NAMESPACES_ALWAYS)):
        secrets = cluster.list("v1", "Secret", namespace, label_selector="owner=helm",
                               metadata_only=True)
        records[namespace] = sorted((meta_of(s)["name"], labels_of(s).get("status", ""))
                                    for s in secrets)
    return records


def _helm_parts(helm_records):
    return dict(("HelmReleaseRecords/%s" % namespace, digest(records))
                for namespace, records in helm_records.items())


def object_ref(definition):
    """The reference the record keeps of a definition (or of a reference)."""
    meta = meta_of(definition)
    return {"apiVersion": definition.get("apiVersion") or definition.get("api_version"),
            "kind": definition["kind"],
            "namespace": meta.get("namespace") or definition.get("namespace") or "",
            "name": meta.get("name") or definition.get("name")}


def read_objects(cluster, refs):
    """{ref key: the object, or None} for every ref, one GET each."""
    return dict((_ref_key(ref), cluster.get(ref["apiVersion"], ref["kind"], ref["name"],
                                            ref["namespace"] or None))
                for ref in refs)


def _ref_key(ref):
    where = "%s/%s" % (ref["namespace"], ref["name"]) if ref["namespace"] else ref["name"]
    return "%s/%s" % (ref["kind"], where)


def _object_parts(objects):
    return dict((key, "absent" if obj is None else
                 digest(dict(_metadata_part(obj), spec=obj.get("spec"), data=obj.get("data"))))
                for key, obj in objects.items())


def fingerprint(raw, helm_records, objects, namespaces):
    """{object key: hash} of everything a converged install leaves and decides by."""
    parts = {}
    parts.update(_namespace_parts(raw, namespaces))
    parts.update(_service_parts(raw))
    parts.update(_webhook_parts(raw))
    parts.update(_deployment_parts(raw))
    parts.update(_crd_parts(raw))
    parts.update(_helm_parts(helm_records))
    parts.update(_object_parts(objects))
    return parts


def record_body(inputs, parts, namespaces, refs, run_id):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(STAMP)
    return {"apiVersion": RECORD_API, "kind": "ConfigMap",
            "metadata": {"name": RECORD_NAME, "namespace": RECORD_NAMESPACE,
                         "labels": dict(MANAGED_BY)},
            "data": {"inputs": inputs, "fingerprint": _dumps(parts),
                     "namespaces": _dumps(sorted(set(namespaces))),
                     "objects": _dumps(sorted(refs, key=_ref_key)),
                     "run_id": run_id or "", "recorded": stamp}}


def _dumps(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def record_of(configmap):
    """The record as facts ({} when there is none, or it cannot be read)."""
    data = (configmap or {}).get("data") or {}
    try:
        record = {"inputs": data["inputs"], "fingerprint": json.loads(data["fingerprint"]),
                  "namespaces": json.loads(data["namespaces"]),
                  "objects": json.loads(data["objects"]),
                  "run_id": data.get("run_id", ""), "recorded": data.get("recorded", "")}
    except (KeyError, TypeError, ValueError):
        return {}
    if not (isinstance(record["fingerprint"], dict) and isinstance(record["namespaces"], list)
            and isinstance(record["objects"], list)):
        return {}
    return record


def needs_write(record, inputs, parts, namespaces, refs):
    return (record.get("inputs") != inputs or record.get("fingerprint") != parts
            or record.get("namespaces") != sorted(set(namespaces))
            or record.get("objects") != sorted(refs, key=_ref_key))


def fingerprint_differences(recorded, now):
    """What changed since the record, each object named."""
    found = []
    for key in sorted(set(recorded) | set(now)):
        before, after = recorded.get(key), now.get(key)
        if before == after:
            continue
        if before is None or before == "absent":
            found.append("%s is new" % key)
        elif after is None or after == "absent":
            found.append("%s is gone" % key)
        else:
            found.append("%s changed" % key)
    return found


def health_problems(snapshot):
    """What keeps a mesh from counting as converged whatever the record says: a revision
    without a Ready istiod, a gateway short of Ready pods, a stable Service selecting none, a
    lock held by a live run, an upgrade stopped half-way, a lock left by a run that died."""
    found = []
    for name, revision in sorted(snapshot.revisions.items()):
        if not revision.get("ready"):
            found.append("revision %s has no Ready istiod" % name)
    for gateway in snapshot.gateways():
        if gateway["meshfleet"] and gateway["ready_replicas"] < max(1, gateway["replicas"]):
            found.append("gateway %s/%s has %s of %s pods Ready"
                         % (gateway["namespace"], gateway["name"], gateway["ready_replicas"],
                            gateway["replicas"]))
    found.extend(snapshot.gateway_service_problems())
    lock = snapshot.lock()
    if lock["state"] == "live":
        found.append("run %s holds the cluster" % lock["holder"])
    found.extend(snapshot.run_problems())
    return found


def differences(record, inputs, parts, health):
    """Why the cluster does not count as converged ([] when it does)."""
    if not record:
        return ["no record of a converged install (kube-system/%s)" % RECORD_NAME] + health
    found = []
    if record["inputs"] != inputs:
        found.append("this run's inputs (inventory, extra vars, meshfleet's own roles and "
                     "plugins) differ from those of run %s" % (record["run_id"] or "unknown"))
    changed = fingerprint_differences(record["fingerprint"], parts)
    if len(changed) > DIFFERENCES_NAMED:
        changed = changed[:DIFFERENCES_NAMED] + [
            "%d more object(s) changed" % (len(changed) - DIFFERENCES_NAMED)]
    return found + ["%s since run %s" % (change, record["run_id"] or "unknown")
                    for change in changed] + health
