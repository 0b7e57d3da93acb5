#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mesh_info
short_description: Read the Istio mesh of one cluster
version_added: 0.1.0
description:
  - Reads one cluster with one LIST request per kind and reports its Istio control planes
    (revisions, their versions and readiness), revision tags, the default revision and where
    the default validator points, namespaces per tag or revision, pods per revision that really
    injected them (the injector's C(istio.io/rev) annotation), gateways and which revision each
    stable gateway Service serves, overlapping or orphaned injection webhooks, the engine that
    installed each revision, and what still uses each revision.
  - What uses a revision (I(in_use)) follows the rule M(meshfleet.istio.revision_prune) refuses
    by, so both name the same uses. These are tags, namespaces, pods other than the revision's
    own istiod and gateway pods, Services outside its releases whose selector names it or one of
    its tags, and the default validator.
  - Where the IstioOperator CRD exists, also lists the IstioOperators, to tell meshfleet's
    operator engine from an IstioOperator written by hand or by istioctl.
  - Also reads the cluster's upgrade record (the ConfigMap C(kube-system/meshfleet-upgrade) kept
    by M(meshfleet.istio.upgrade_record)) with one GET.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - meshfleet.istio.module
  - meshfleet.istio.mesh_read
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Read the mesh of this cluster
  meshfleet.istio.mesh_info:
    kubeconfig: "{{ meshfleet_kubeconfig }}"
    context: "{{ meshfleet_context }}"
  register: __mesh

- name: Show which revision each tag selects
  ansible.builtin.debug:
    msg: "{{ __mesh.mesh.tags }}"
"""

RETURN = r"""
mesh:
  description: The mesh of the cluster.
  returned: always
  type: dict
  contains:
    kubernetes_version:
      description: The apiserver's version.
      type: str
      sample: v1.35.4
    istio_namespace:
      description: Namespace of the control planes.
      type: str
      sample: istio-system
    engine:
      description: How the revisions were installed (C(helm), C(operator), C(istioctl), C(mixed), C(none)).
      type: str
      sample: helm
    revisions:
      description:
        - Control-plane revisions by name, with version, readiness, tags, engine and what uses them.
        - An operator-made revision (I(engine=operator)) also has I(istio_operator), the
          IstioOperator that owns its istiod, and I(meshfleet_operator), whether meshfleet's
          operator engine wrote that IstioOperator (label C(app.kubernetes.io/managed-by=meshfleet)).
      type: dict
      sample: {"1-31-0": {"version": "1.31.0", "ready": true, "replicas": 2, "ready_replicas": 2,
               "engine": "helm", "tags": ["default", "prod-stable"], "in_use": ["tag default"]}}
    tags:
      description: Revision tags and the revision each points at.
      type: dict
      sample: {"default": "1-31-0", "prod-stable": "1-31-0"}
    default_revision:
      description: The revision the C(default) tag points at, if any.
      type: str
      sample: 1-31-0
    validator:
      description: Where C(istiod-default-validator) points and whether that Service exists.
      type: dict
      sample: {"exists": true, "revision": "1-31-0", "service": "istiod-1-31-0", "target_exists": true}
    namespaces:
      description: Namespaces with an injection label and the revision they select.
      type: list
      elements: dict
      sample: [{"name": "shop", "rev_label": "prod-stable", "injection_label": null, "revision": "1-31-0"}]
    pods_by_revision:
      description: Injected pods counted by the revision that injected them (Succeeded pods left out).
      type: dict
      sample: {"1-31-0": 12}
    pods_by_namespace:
      description: Injected pods counted by namespace, then by the revision that injected them.
      type: dict
      sample: {"shop": {"1-31-0": 3}}
    gateways:
      description:
        - Gateway Deployments with their kind, revision and readiness, the Helm release that
          owns each (C(helm_release), C(namespace/name), empty when none does), and whether it
          is one meshfleet installs (C(meshfleet), the release C(<gateway>-<revision>) of its own
          name); those that are not are named in C(problems).
      type: list
      elements: dict
    gateway_services:
      description: Stable gateway Services, the revision each one serves, their type and ports.
      type: list
      elements: dict
    hand_made_gateway_services:
      description:
        - Services that no Helm release made and that are not stable gateway Services but
          select gateway pods, with the revision they serve (read from the pods they select;
          empty unless exactly one), their selector, type, ports and Ready pods. The gateways
          role adopts those named like a gateway of the spec.
      type: list
      elements: dict
    helm_tag_objects:
      description:
        - Tag webhook configurations and tag Services that a Helm release renders (an istiod
          release with C(revisionTags)), each with its C(release) and whether helm is told to
          keep it (C(kept)).
      type: list
      elements: dict
    istio_crds:
      description: Istio's CustomResourceDefinitions (groups C(*.istio.io)) and the Helm release
        that owns each (empty strings when none does).
      type: list
      elements: dict
      sample: [{"name": "gateways.networking.istio.io", "helm_release": "istio-base",
                "helm_release_namespace": "istio-system"}]
    helm_releases:
      description:
        - The Helm releases in the namespaces of istiod and the gateways, as helm stores them -
          C(name), C(namespace), C(revision), C(status), C(chart), chart C(version), the
          revision's C(description) and C(made_by_meshfleet) (meshfleet describes each revision
          it deploys as C(meshfleet) followed by a colon and the reason).
        - C(changed_outside) is null, or, when a newer revision was made by someone else after
          meshfleet's last one, C(meshfleet_revision), C(chart_before) and the dotted paths of
          C(values_changed) since.
      type: list
      elements: dict
      sample: [{"name": "istio-ingressgateway-1-31-0", "namespace": "istio-gateways",
                "revision": 3, "status": "deployed", "chart": "gateway", "version": "1.31.0",
                "description": "Upgrade complete", "made_by_meshfleet": false,
                "changed_outside": {"meshfleet_revision": 2, "chart_before": "1.31.0",
                                    "values_changed": ["replicaCount"]}}]
    overlapping_webhooks:
      description: Injection claims made by more than one webhook configuration.
      type: list
      elements: dict
    orphaned_webhooks:
      description: Injection webhook configurations whose istiod Service does not exist.
      type: list
      elements: dict
    lock:
      description:
        - The run lock (Lease C(kube-system/meshfleet-run-lock)) - C(state) is C(absent) (never
          held), C(free), C(live) (its run renews it), C(stale) (renewals stopped; taken only by
          a run naming the holder) or C(expired) (the next run takes it) - with C(holder),
          C(age_seconds) since the last renewal, C(expires_in_seconds), C(renew_seconds),
          C(resource_version) and a one-line C(summary).
      type: dict
      sample: {"state": "live", "holder": "20261126T131500Z-upgrade-cluster1-4711",
               "age_seconds": 4, "expires_in_seconds": 116, "renew_seconds": 20,
               "resource_version": "5120", "summary": "... live (renewed 4s ago, expires in 116s)"}
    problems:
      description:
        - Conditions that break traffic, installs or upgrades, in words, each with the way out.
        - A validator or tag pointing at what is not installed, overlapping or orphaned injection
          webhooks, a namespace that asks for injection without exactly one injector of a Ready
          revision, pods running without a sidecar where injection is asked, a stable gateway
          Service that selects no Ready pod.
        - Also a run lock left stale or expired by a run that died, and an upgrade that started
          or failed and was neither finished nor rolled back.
      type: list
      elements: str
    upgrade_record:
      description: >-
        The cluster's upgrade record: the last upgrade's revision, phase, run and time, and its
        C(history) of transitions, oldest first (empty when the cluster has no record).
      type: dict
      sample: {"revision": "1-31-0", "phase": "passed", "run_id": "20261126T160000Z-upgrade-cluster1-4711",
               "updated": "2026-11-26T16:05:00Z",
               "history": [{"revision": "1-31-0", "phase": "passed", "run_id": "20261126T160000Z-upgrade-cluster1-4711",
                            "updated": "2026-11-26T16:05:00Z"}]}
"""

from ansible_collections.meshfleet.istio.plugins.module_utils.kube import k8s_module
from ansible_collections.meshfleet.istio.plugins.module_utils.mesh_snapshot import (
    MeshSnapshot,
    read_cluster,
)
from ansible_collections.meshfleet.istio.plugins.module_utils.module_runner import run_module


def read_mesh(module, cluster):
    raw = read_cluster(cluster, module.params["istio_namespace"], helm_releases=True)
    return dict(changed=False, mesh=MeshSnapshot(raw).facts())


def main():
    module = k8s_module(dict(istio_namespace=dict(type="str", default="istio-system")))
    run_module(module, read_mesh)


if __name__ == "__main__":
    main()
