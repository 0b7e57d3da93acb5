"""Seeing the fleet: an upgrade run with the fleet_progress callback (a canary whose health gate
fails, then the rerun that upgrades every cluster), then the status report's HTML dashboard of
that fleet opened in headless Chromium, and a synthetic 32-cluster dashboard at a laptop's width.
The tests run in file order and build on each other. Screenshots: build/test-output/dashboard/."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from localfleet.pytest_plugin import api_client
from localfleet.waits import wait_until
from tests.playbooks.browser import Browser
from tests.unit.plugins.fleet_data import render_dashboard, synthetic_report

pytestmark = [pytest.mark.fleet, pytest.mark.scenario]

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "build" / "test-output" / "dashboard"
OLD, NEW = "1-30-3", "1-31-0"
UPGRADE = {"meshfleet_target_version": "1.31.0", "meshfleet_prune_after": 3,
           "meshfleet_rollout_timeout": 120}
HOLD = "localfleet.meshfleet.io/hold"
GATE_STEP = "Move the canary namespaces and gate on their health"


@pytest.fixture(scope="module")
def apis(fleet):
    return {c.spec.name: api_client(fleet, c.spec.name) for c in fleet.clusters}


@pytest.fixture(scope="module")
def names(fleet):
    assert len(fleet.clusters) >= 2, "the test needs a canary and a later wave"
    return [c.spec.name for c in fleet.clusters]


def run_with_progress(playbook_invocation, playbook, **options):
    """ansible-playbook with the fleet_progress callback; its return code and output."""
    cmd, env, workdir = playbook_invocation(playbook, **options)
    env.update(ANSIBLE_STDOUT_CALLBACK="meshfleet.istio.fleet_progress",
               MESHFLEET_PROGRESS_INTERVAL="1")
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def result_table(output):
    """The FLEET RESULT table: cluster -> result."""
    assert "FLEET RESULT" in output, output[-4000:]
    table = {}
    for line in output.split("FLEET RESULT", 1)[1].splitlines()[1:]:
        match = re.match(r"^  (\S+)\s{2,}(.+)$", line)
        if not match:
            if table:
                break
            continue
        if match[1] != "cluster":
            table[match[1]] = match[2].strip()
    return table


def namespace_exists(api, name):
    return any(n.metadata.name == name for n in client.CoreV1Api(api).list_namespace().items)


def delete_namespace(api, name):
    if namespace_exists(api, name):
        client.CoreV1Api(api).delete_namespace(name)
    wait_until(lambda: not namespace_exists(api, name), what=f"namespace {name} gone")


def create_namespace(api, name):
    """A new namespace on the stable tag (one left by an interrupted run is deleted first)."""
    delete_namespace(api, name)
    client.CoreV1Api(api).create_namespace(
        {"metadata": {"name": name, "labels": {"istio.io/rev": "prod-stable"}}})


def injected(api, namespace, revision):
    return [p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items
            if (p.metadata.annotations or {}).get("istio.io/rev") == revision]


def test_install_the_older_release_with_a_pod_that_keeps_it(run_playbook, apis, names):
    run = run_playbook("install", extra_vars={"meshfleet_istio_version": "1.30.3"})
    assert run.rc == 0, run.output[-4000:]
    # A bare pod on the last cluster: no controller restarts it, so its revision is kept.
    api = apis[names[-1]]
    create_namespace(api, "misc")
    client.CoreV1Api(api).create_namespaced_pod("misc", {
        "metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "bare", "image": "example.invalid/bare:1"}]}})
    wait_until(lambda: injected(api, "misc", OLD) == ["bare"], what="the bare pod injected")


def test_a_failing_canary_health_gate_reads_failed_at_its_step(playbook_invocation, apis, names):
    canary = apis[names[0]]
    create_namespace(canary, "canary")
    client.AppsV1Api(canary).create_namespaced_deployment("canary", {
        "metadata": {"name": "probe"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "probe"}},
                 "template": {"metadata": {"labels": {"app": "probe", HOLD: "not-ready"}},
                              "spec": {"containers": [{"name": "probe",
                                                       "image": "example.invalid/probe:1"}]}}}})
    rc, output = run_with_progress(playbook_invocation, "upgrade", extra_vars=dict(
        UPGRADE, meshfleet_canary_namespaces=["canary"], meshfleet_health_timeout=10))
    assert rc != 0
    table = result_table(output)
    assert sorted(table) == sorted(names), table
    assert table[names[0]].startswith(f"failed at {GATE_STEP}: "), table
    assert "canary" in table[names[0]][len(f"failed at {GATE_STEP}: "):], table
    for later in names[1:]:
        assert table[later] == "not reached", table
    assert "fatal: [" in output, "the default callback's output stays"
    delete_namespace(canary, "canary")


def test_the_upgrade_shows_each_clusters_step_and_a_result_per_cluster(playbook_invocation,
                                                                        names):
    rc, output = run_with_progress(playbook_invocation, "upgrade", extra_vars=UPGRADE)
    assert rc == 0, output[-5000:]
    table = result_table(output)
    assert sorted(table) == sorted(names), table
    for name in names[:-1]:
        assert table[name] == f"ok (upgraded {OLD} -> {NEW})", table
    assert table[names[-1]] == (f"ok (upgraded {OLD} -> {NEW}), kept {OLD} because it is still "
                                f"used by pod misc/bare"), table
    # The pause before pruning (3 s) outlasts the progress interval (1 s): the block names it.
    progress = [line for line in output.splitlines()
                if "Wait before pruning the old revision (" in line]
    assert progress, output[-5000:]
    assert all("waiting for the pause to end" in line for line in progress)
    assert re.search(r"^FLEET PROGRESS \[\d\d:\d\d:\d\d\] \d+ cluster\(s\) working$", output, re.M)
    assert "TASK [Upgrade this cluster]" in output, "the default callback's output stays"


@pytest.fixture(scope="module")
def report(run_playbook, tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    run = run_playbook("status", extra_vars={"meshfleet_report_dir": str(directory)})
    assert run.rc == 0, run.output[-4000:]
    return directory


def keep(path, name):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, OUTPUT / name)


def test_the_fleet_json_carries_each_clusters_upgrade_record(report, names):
    import json
    fleet = json.loads((report / "fleet.json").read_text())
    canary = fleet[names[0]]["upgrade_record"]
    assert (canary["revision"], canary["phase"]) == (NEW, "passed")
    assert [h["phase"] for h in canary["history"]] == ["started", "failed", "started", "passed"]
    for name in names[1:]:
        assert [h["phase"] for h in fleet[name]["upgrade_record"]["history"]] == ["started", "passed"]


def test_the_dashboard_of_the_fleet_in_a_real_browser(report, names, tmp_path):
    page = report / "fleet.html"
    with Browser(tmp_path / "browser") as browser:
        browser.open(page)
        assert browser.console_errors() == []
        rows = browser.evaluate("[...document.querySelectorAll('#clusters tbody tr')].map(r => r.id)")
        assert rows == [f"cluster-{n}" for n in names]
        timeline = browser.evaluate(
            f"document.getElementById('timeline-{names[0]}').innerText")
        assert re.search(rf"started {NEW}.*failed {NEW}.*started {NEW}.*passed {NEW}", timeline, re.S), timeline
        progress = browser.evaluate("document.getElementById('upgrade-progress').innerText")
        assert f"to {NEW}: {len(names)} of {len(names)} passed" in progress, progress
        kept = browser.evaluate(f"document.getElementById('cluster-{names[-1]}').innerText")
        # The old revision is kept there (the bare pod and its gateways' pods still run on it).
        assert f"{OLD} (1.30.3)" in kept and re.search(rf"{OLD}: [1-9]", kept), kept
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot = browser.screenshot(tmp_path / "fleet.png")
    assert shot.stat().st_size > 10000
    keep(shot, "fleet.png")
    keep(page, "fleet.html")


def test_32_clusters_stay_usable_at_a_laptops_width(fleet, tmp_path):
    page = tmp_path / "fleet-32.html"
    page.write_text(render_dashboard(synthetic_report(32)))
    with Browser(tmp_path / "browser", width=1366, height=900) as browser:
        browser.open(page)
        assert browser.console_errors() == []
        rows = browser.evaluate("[...document.querySelectorAll('#clusters tbody tr')]"
                                ".filter(r => r.getBoundingClientRect().height > 0).length")
        assert rows == 32
        # No horizontal scrolling: neither the page nor the cluster table is wider than the window.
        assert browser.evaluate("document.documentElement.scrollWidth") <= 1366
        assert browser.evaluate("(() => { const w = document.querySelector('#clusters').parentElement;"
                                " return w.scrollWidth <= w.clientWidth; })()")
        # The summary is on the first screen, and the problem rows stand out.
        assert browser.evaluate("document.getElementById('summary').getBoundingClientRect().bottom") < 900
        colours = browser.evaluate(
            "['cluster-cluster5', 'cluster-cluster6'].map(id => getComputedStyle("
            "document.getElementById(id).querySelector('td')).backgroundColor)")
        assert colours[0] != colours[1], colours
        shot = browser.screenshot(tmp_path / "fleet-32.png")
        full = browser.screenshot(tmp_path / "fleet-32-full.png", full_page=True)
    keep(shot, "fleet-32.png")
    keep(full, "fleet-32-full.png")


def test_cleanup(run_playbook, apis, names):
    delete_namespace(apis[names[-1]], "misc")
    run = run_playbook("uninstall", extra_vars={"meshfleet_force": True})
    assert run.rc == 0, run.output[-3000:]
