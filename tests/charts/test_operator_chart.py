"""The operator role's split of the real istio-operator charts (1.22.8, 1.23.6), rendered with
the values the role sets: the shared CRD, and five objects named after the revision that carry
the revision, the watched namespaces and the release's image."""

import subprocess

import pytest
import yaml

from ansible_collections.meshfleet.istio.plugins.module_utils import operator_chart
from localfleet import charts, gobuild, versions

WATCHED = "istio-system,istio-gateways"
WATCHED_SET = WATCHED.replace(",", "\\,")  # helm --set splits values at unescaped commas


def render(version, revision):
    chart = charts.chart_dir(version) / f"istio-operator-{version}.tgz"
    return yaml.safe_load_all(subprocess.run(
        [str(gobuild.binaries_dir() / "helm"), "template", f"istio-operator-{revision}",
         str(chart), "-n", "istio-operator", "--include-crds", "--set", f"revision={revision}",
         "--set", "hub=docker.io/istio", "--set", f"tag={version}",
         "--set-string", f"watchedNamespaces={WATCHED_SET}"],
        check=True, capture_output=True, text=True).stdout)


@pytest.mark.parametrize("version", sorted(versions.ISTIO_OPERATOR_BUILDS))
def test_the_chart_splits_into_the_shared_crd_and_the_revisions_own_objects(version):
    revision = version.replace(".", "-")
    split = operator_chart.split_rendered(render(version, revision), revision)
    assert [o["metadata"]["name"] for o in split["shared"]] == [operator_chart.CRD_NAME]
    refs = operator_chart.revision_refs(revision, "istio-operator")
    assert sorted((o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
                  for o in split["revision"]) == sorted(
        (r["kind"], r["metadata"]["name"], r["metadata"].get("namespace")) for r in refs)
    deployment = next(o for o in split["revision"] if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["REVISION"], env["WATCH_NAMESPACE"]) == (revision, WATCHED)
    assert container["image"] == f"docker.io/istio/operator:{version}"


def test_the_crd_is_the_same_object_for_every_operator_release():
    crds = [operator_chart.split_rendered(render(v, v.replace(".", "-")), v.replace(".", "-"))
            ["shared"][0] for v in sorted(versions.ISTIO_OPERATOR_BUILDS)]
    assert all(crd == crds[0] for crd in crds)


def test_a_chart_of_another_shape_is_refused():
    foreign = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-operator"}}]
    with pytest.raises(operator_chart.OperatorChartError, match="neither the IstioOperator CRD"):
        operator_chart.split_rendered(foreign, "1-22-8")
    with pytest.raises(operator_chart.OperatorChartError, match="rendered no ClusterRole"):
        operator_chart.split_rendered(
            [{"apiVersion": "v1", "kind": kind, "metadata": {"name": "istio-operator-1-22-8"}}
             for kind in ("Deployment", "ServiceAccount", "Service", "ClusterRoleBinding")],
            "1-22-8")
