"""Tag objects rendered by meshfleet equal what the real istiod charts render."""

import subprocess

import pytest
import yaml

from ansible_collections.meshfleet.istio.plugins.module_utils import revision_tags
from localfleet import charts, gobuild, versions


def chart_render(version, tag, revision, namespace):
    chart = charts.chart_dir(version) / f"istiod-{version}.tgz"
    out = subprocess.run(
        [str(gobuild.binaries_dir() / "helm"), "template", "istiod", str(chart), "-n", namespace,
         "--set", f"revision={revision}", "--set", f"revisionTags={{{tag}}}"],
        check=True, capture_output=True, text=True).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


@pytest.mark.parametrize("version", sorted(versions.ISTIO_BUILDS))
@pytest.mark.parametrize("tag", ["default", "prod-stable"])
@pytest.mark.parametrize("namespace", ["istio-system", "istio-control"])
def test_tag_objects_match_the_chart(version, tag, namespace):
    rendered = chart_render(version, tag, "1-31-0", namespace)
    ours = revision_tags.tag_objects(tag, "1-31-0", namespace)
    for obj in ours:
        theirs = rendered[(obj["kind"], obj["metadata"]["name"])]
        for key in ("istio.io/tag", "istio.io/rev", "app"):
            assert obj["metadata"]["labels"][key] == theirs["metadata"]["labels"][key]
        if obj["kind"] == "Service":
            assert obj["spec"]["ports"] == theirs["spec"]["ports"]
            assert obj["spec"]["selector"] == theirs["spec"]["selector"]
            assert obj["metadata"]["namespace"] == theirs["metadata"]["namespace"]
        else:
            assert obj["webhooks"] == theirs["webhooks"]


def test_validator_follows_the_base_chart_for_a_revision():
    version = versions.ISTIO_DEFAULT
    chart = charts.chart_dir(version) / f"base-{version}.tgz"
    out = subprocess.run(
        [str(gobuild.binaries_dir() / "helm"), "template", "base", str(chart), "-n", "istio-system",
         "--set", "defaultRevision=1-31-0"], check=True, capture_output=True, text=True).stdout
    theirs = next(d for d in yaml.safe_load_all(out)
                  if d and d["kind"] == "ValidatingWebhookConfiguration")
    ours = revision_tags.default_validator_target("1-31-0")
    assert ours["metadata"]["name"] == theirs["metadata"]["name"]
    assert ours["metadata"]["labels"]["istio.io/rev"] == theirs["metadata"]["labels"]["istio.io/rev"]
    their_hook = dict(theirs["webhooks"][0])
    assert their_hook.pop("failurePolicy") == "Ignore"  # istiod's to flip: left out on purpose
    assert ours["webhooks"] == [their_hook]
