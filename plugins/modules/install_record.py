#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: install_record
short_description: Tell whether a cluster is as its last converged install left it, and record it
version_added: 0.1.0
description:
  - Keeps the ConfigMap C(kube-system/meshfleet-install), the record of the cluster's last
    converged install. It holds a digest of that run's inputs and one short hash per object whose fields
    meshfleet sets or decides by. These are the Istio namespaces and every namespace labelled for
    injection, the Services of the gateway namespaces, Istio's webhook configurations, CRDs and
    Deployments, the Helm release records (Secrets) of the mesh's namespaces and of
    C(kube-system), and the objects named by I(objects).
  - The hashes leave out what the API server and istiod change by themselves (resourceVersion,
    managedFields, status, a webhook's caBundle and failurePolicy, a Service's cluster IPs, a
    Deployment's replica count and its pod template's annotations).
  - With I(state=compared), reads the cluster's mesh as M(meshfleet.istio.mesh_info) does
    (without the Helm release contents) and returns it, with C(converged) true when the record
    exists, names the same I(inputs), every object hashes as recorded and the mesh is healthy
    (every revision has a Ready istiod, every meshfleet gateway all its pods Ready, every stable
    gateway Service a Ready pod, no other run holds the cluster, no upgrade stopped half-way).
    install.yml ends a cluster's run there when it is converged. Writes nothing.
  - With I(state=compared) and I(run_lock), a cluster that is not converged must also be free
    for this run, as M(meshfleet.istio.run_lock) with I(state=available) checks it (the lock's
    I(fence) is not checked here); otherwise the task fails naming the holder and the way out.
  - With I(state=present), reads those objects as they are now and writes the record when it
    differs from the one the cluster has.
  - The action plugin computes I(inputs) when it is not given, on the controller, from every
    variable of the task whose name starts with C(meshfleet_), C(namespaces_), C(istiod_),
    C(gateways_) or C(mesh_config_) (templated; run options such as C(meshfleet_serial) and
    the lock options left out) and from the files of the collection's roles, plugins and
    playbooks.
attributes:
  check_mode:
    support: full
    description: I(state=present) reports whether the record would change and writes nothing.
  diff_mode:
    support: full
    description: I(state=present) returns the recorded hashes before and after.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
  - meshfleet.istio.istio_namespace
options:
  state:
    description: C(compared) compares the cluster with its record; C(present) records it.
    type: str
    choices: [compared, present]
    default: compared
  inputs:
    description:
      - Digest of the run's inputs. The action plugin computes it when it is not given.
      - Pass the C(inputs) that I(state=compared) returned, so that the record names the
        inputs as the run read them before its first write.
    type: str
  namespaces:
    description:
      - With I(state=present), the namespaces whose labels and annotations the record hashes
        besides those labelled for injection (the Istio namespaces and the application
        namespaces).
    type: list
    elements: str
    default: []
  objects:
    description:
      - With I(state=present), further objects the record hashes (labels, annotations, spec and
        data), or records as absent. Definitions or references with C(apiVersion), C(kind),
        C(metadata.name) and C(metadata.namespace).
    type: list
    elements: dict
    default: []
  run_id:
    description: With I(state=present), the run that converged the cluster (kept in the record).
    type: str
  release_lock:
    description:
      - With I(state=present), give back the run lock (I(run_lock)) after the record, when this
        run holds it, as M(meshfleet.istio.run_lock) with I(state=released) would (install.yml
        saves a module process this way).
    type: bool
    default: false
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Compare the cluster with its last converged install
  meshfleet.istio.install_record:
    state: compared
  register: __record

- name: End this cluster's run when nothing differs
  ansible.builtin.meta: end_host
  when: __record.converged

- name: Record the converged install
  meshfleet.istio.install_record:
    state: present
    inputs: "{{ __record.inputs }}"
    namespaces: [istio-config, istio-system, istio-gateways]
    objects:
      - apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: default, namespace: istio-config}
    run_id: "{{ _run_id }}"
    release_lock: true
"""

RETURN = r"""
converged:
  description: Whether nothing differs from the last converged install.
  returned: when I(state=compared)
  type: bool
differences:
  description: (I(state=compared)) Why the cluster does not count as converged, each object or
    health problem named; empty when it does.
  returned: always
  type: list
  elements: str
  sample: ["Service/istio-gateways/istio-ingressgateway changed since run 20261203T170000Z-install-cluster1-4711"]
inputs:
  description: The digest of the run's inputs the cluster was compared with or recorded for.
  returned: always
  type: str
mesh:
  description: (I(state=compared)) The cluster's mesh, as M(meshfleet.istio.mesh_info) returns it,
    with an empty C(helm_releases).
  returned: when I(state=compared)
  type: dict
lock_released:
  description: (I(state=present)) Whether this task gave the run lock back.
  returned: when I(state=present)
  type: bool
record:
  description: The record after the task (before it, for I(state=compared)); empty when there is
    none.
  returned: always
  type: dict
  contains:
    inputs:
      description: Digest of the recorded run's inputs.
      type: str
    fingerprint:
      description: Hash of each object, by C(Kind/namespace/name).
      type: dict
    namespaces:
      description: The namespaces the record hashes besides those labelled for injection.
      type: list
      elements: str
    objects:
      description: The further objects the record hashes.
      type: list
      elements: dict
    run_id:
      description: The run that recorded it.
      type: str
    recorded:
      description: When, in UTC.
      type: str
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.install_record import (
    RECORD_API,
    RECORD_NAME,
    RECORD_NAMESPACE,
    differences,
    fingerprint,
    gateway_namespaces,
    health_problems,
    needs_write,
    object_ref,
    read_helm_records,
    read_objects,
    record_body,
    record_of,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError
from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.lock_keeper import LockKeeper
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import (
    MeshSnapshot,
    read_cluster,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module
from ansible_collections.meshfleet.istio.plugins.module_utils.run_lock import LockHeld, LockMoved

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["compared", "present"], default="compared"),
    inputs=dict(type="str"),
    namespaces=dict(type="list", elements="str", default=[]),
    objects=dict(type="list", elements="dict", default=[]),
    run_id=dict(type="str"),
    release_lock=dict(type="bool", default=False),
    istio_namespace=dict(type="str", default="istio-system"),
)
REQUIRED_IF = [("state", "present", ("inputs",))]


def _read(cluster, params, namespaces, refs):
    raw = read_cluster(cluster, params["istio_namespace"])
    helm_records = read_helm_records(
        cluster, [params["istio_namespace"]] + sorted(gateway_namespaces(raw)))
    parts = fingerprint(raw, helm_records, read_objects(cluster, refs), namespaces)
    return raw, parts


def compare(module, cluster):
    params = module.params
    record = record_of(cluster.get(RECORD_API, "ConfigMap", RECORD_NAME, RECORD_NAMESPACE))
    raw, parts = _read(cluster, params, record.get("namespaces", []), record.get("objects", []))
    snapshot = MeshSnapshot(raw)
    found = differences(record, params["inputs"] or "", parts, health_problems(snapshot))
    if found and params.get("run_lock"):
        check_lock_available(module, cluster)
    return dict(changed=False, converged=not found, differences=found, inputs=params["inputs"],
                mesh=snapshot.facts(), record=record)


def check_lock_available(module, cluster):
    """A cluster that converges in full must be free for this run (I(run_lock)) before its
    preflight: the run_lock module's `available` check, in the same process."""
    keeper = LockKeeper.from_params(cluster.api, dict(module.params["run_lock"], fence=None))
    try:
        action, previous = keeper.acquire(check_mode=True)
    except (LockHeld, LockMoved) as error:
        raise MeshfleetError(str(error)) from error
    if action == "take" and previous and previous != keeper.holder:
        module.warn("the run lock of %s can be taken over" % previous)


def record_install(module, cluster):
    params = module.params
    previous = record_of(cluster.get(RECORD_API, "ConfigMap", RECORD_NAME, RECORD_NAMESPACE))
    refs = [object_ref(definition) for definition in params["objects"]]
    namespaces = params["namespaces"]
    parts = _read(cluster, params, namespaces, refs)[1]
    changed = needs_write(previous, params["inputs"], parts, namespaces, refs)
    record = previous
    if changed:
        body = record_body(params["inputs"], parts, namespaces, refs, params["run_id"])
        cluster.apply(body)
        record = record_of(body)
    released = bool(params["release_lock"] and cluster.lock is not None
                    and cluster.lock.release() == cluster.lock.holder)
    result = dict(changed=changed or released, differences=[], inputs=params["inputs"],
                  record=record, lock_released=released)
    if module._diff:
        result["diff"] = dict(before=previous.get("fingerprint", {}),
                              after=record.get("fingerprint", {}))
    return result


def main():
    module = k8s_module(ARGUMENT_SPEC, required_if=REQUIRED_IF)
    run_module(module, compare if module.params["state"] == "compared" else record_install)


if __name__ == "__main__":
    main()
