"""A synthetic fleet report (what status.yml writes as fleet.json) of any size, and the HTML
dashboard rendered from it through the real template with Jinja2, as Ansible's template module
renders it (trim_blocks, no autoescape)."""

from pathlib import Path

import jinja2

from ansible_collections.meshfleet.istio.plugins.filter.fleet_report import FilterModule

TEMPLATES = Path(__file__).resolve().parents[3] / "playbooks" / "templates"
OLD, NEW = "1-30-dev", "1-31-0"
VERSIONS = {OLD: "1.30-dev", NEW: "1.31.0"}


def render_dashboard(report):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True,
                             autoescape=False, undefined=jinja2.StrictUndefined)
    for name, function in FilterModule().filters().items():
        env.filters["meshfleet.istio." + name] = function
    return env.get_template("fleet_report.html.j2").render(_report=report)


def transition(revision, phase, minute, run):
    return {"revision": revision, "phase": phase, "run_id": run,
            "updated": "2026-11-29T12:%02d:00Z" % minute}


def cluster_mesh(index, revisions, default, phase=None, problems=(), lock=None):
    """One cluster's mesh_info facts; `phase` is its upgrade record's phase for NEW (None: no
    record)."""
    history = []
    run = "20261129T120000Z-upgrade-cluster%d-%d" % (index, 4000 + index)
    if phase:
        history = [transition(NEW, "started", index % 50, run)]
        if phase != "started":
            history.append(transition(NEW, phase, index % 50 + 5, run))
    mesh = {
        "kubernetes_version": "v1.35.4", "istio_namespace": "istio-system", "engine": "helm",
        "revisions": {rev: {"version": VERSIONS[rev], "ready": True, "replicas": 2,
                            "ready_replicas": 2, "engine": "helm",
                            "tags": ["default", "prod-stable"] if rev == default else [],
                            "in_use": []} for rev in revisions},
        "tags": {"default": default, "prod-stable": default},
        "default_revision": default,
        "validator": {"exists": True, "revision": default, "service": "istiod-" + default,
                      "target_exists": True},
        "namespaces": [{"name": "shop", "rev_label": "prod-stable", "injection_label": None,
                        "revision": default}],
        "pods_by_revision": {default: 10 + index},
        "pods_by_namespace": {"shop": {default: 10 + index}},
        "gateways": [],
        "gateway_services": [
            {"name": "istio-ingressgateway", "namespace": "istio-gateways", "kind": "ingressgateway",
             "serving_revision": default, "type": "LoadBalancer"},
            {"name": "istio-egressgateway", "namespace": "istio-gateways", "kind": "egressgateway",
             "serving_revision": default, "type": "ClusterIP"}],
        "overlapping_webhooks": [], "orphaned_webhooks": [],
        "problems": list(problems),
        "upgrade_record": dict(history[-1], history=history) if history else {},
    }
    if lock:
        mesh["lock"] = lock
    return mesh


def synthetic_report(count=32):
    """A fleet in the middle of an upgrade from OLD to NEW: the first quarter passed, one failed,
    one is on it, the rest not reached; cluster 5 has a problem and the last cannot be read."""
    report = {}
    for index in range(1, count + 1):
        name = "cluster%d" % index
        if index == count and count > 2:
            report[name] = {"unreachable": True,
                            "error": "cluster%d: connection refused <dial tcp 127.0.0.1:443>" % index}
            continue
        if index <= max(1, count // 4):
            mesh = cluster_mesh(index, [NEW], NEW, "passed")
        elif index == count // 4 + 1:
            mesh = cluster_mesh(index, [OLD, NEW], OLD, "failed")
        elif index == count // 4 + 2:
            mesh = cluster_mesh(index, [OLD, NEW], OLD, "started",
                                lock={"holder": "20261129T120000Z-upgrade-%s-1" % name,
                                      "live": True, "stale": False, "age": 42})
        else:
            mesh = cluster_mesh(index, [OLD], OLD)
        if index == 5:
            mesh["problems"] = ["tag canary points at revision 1-29-0, which is not installed"]
        report[name] = mesh
    return report
