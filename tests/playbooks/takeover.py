"""What the takeover tests share: the upgrade they run, and a namespace `shop` with a
Deployment `web` whose pods' injectors they follow."""

import json

from kubernetes import client

from tests.playbooks import istioctl_judge
from tests.playbooks.canary_setup import NEW

UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_prune_after": 0,
           "meshfleet_rollout_timeout": 120}


def web_deployment(replicas=2):
    labels = {"app": "web"}
    return {"metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web",
                                                           "image": "example.invalid/web:1"}]}}}}


def create_app(api, namespace, labels, replicas=2):
    """Namespace `namespace` with `labels` and the Deployment `web` in it."""
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace, "labels": labels}})
    client.AppsV1Api(api).create_namespaced_deployment(namespace, web_deployment(replicas))


def injected(api, namespace="shop"):
    """The revision that injected each live pod of `namespace` ("none" for no sidecar)."""
    return sorted((p.metadata.annotations or {}).get("istio.io/rev", "none")
                  for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items
                  if p.metadata.deletion_timestamp is None)


def assert_taken_over(run_playbook, fleet, cluster, api, report_dir, write_counter):
    """After a takeover: the release's istioctl finds meshfleet's layout on 1.31.0, a rerun of
    the upgrade changes nothing and writes nothing, and the report names no problem."""
    tags = {"default": NEW, "prod-stable": NEW}
    assert istioctl_judge.verdict(fleet, cluster, api, tags, NEW) == []
    counter = write_counter()
    again = run_playbook("upgrade", extra_vars=UPGRADE, limit=cluster)
    assert again.rc == 0 and again.changed()[cluster] == 0, again.recap()
    assert counter.writes()[cluster] == []
    report = run_playbook("status", extra_vars={"meshfleet_report_dir": str(report_dir)},
                          limit=cluster)
    assert report.rc == 0, report.output[-3000:]
    assert json.loads((report_dir / "fleet.json").read_text())[cluster]["problems"] == []
