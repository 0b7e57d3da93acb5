"""The fleet_progress callback's pure parts: what a step waits for, failure reasons, the progress
block and the result table (the playbook test runs it on a real upgrade)."""

import pytest

from ansible_collections.meshfleet.istio.plugins.callback.fleet_progress import (
    ClusterState,
    format_duration,
    progress_lines,
    reason_of,
    result_lines,
    wait_of,
)


@pytest.mark.parametrize("action,args,retries,expected", [
    ("meshfleet.istio.helm_release", {"wait": True}, False, "helm --wait"),
    ("meshfleet.istio.helm_release", {}, False, ""),
    ("meshfleet.istio.workload_migrate", {}, False, "restarted workloads to become Ready"),
    ("meshfleet.istio.canary_gate", {}, True, "canary gate"),
    ("ansible.builtin.pause", {}, False, "the pause to end"),
    ("kubernetes.core.k8s_info", {}, True, "polled until it holds"),
    ("ansible.builtin.set_fact", {}, False, ""),
])
def test_steps_that_wait_say_what_for(action, args, retries, expected):
    wait = wait_of(action, args, retries)
    assert (expected in wait) if expected else wait == ""


def test_the_reason_is_the_first_line_of_the_message_or_of_the_first_failed_item():
    assert reason_of({"msg": "\n  canary/probe is not Ready after 20s\nmore"}) == \
        "canary/probe is not Ready after 20s"
    assert reason_of({"msg": "One or more items failed", "results": [
        {"failed": False, "msg": "fine"}, {"failed": True, "msg": "Service x: too few pods"}]}) == \
        "Service x: too few pods"
    assert reason_of({}) == "no message"
    assert len(reason_of({"msg": "x" * 1000})) == 240


def test_the_progress_block_lists_each_working_cluster_with_its_step_time_and_wait():
    one, two, done = ClusterState("cluster1"), ClusterState("cluster2"), ClusterState("cluster10")
    one.start("Restart the workloads onto the new revision", wait_of("workload_migrate"), 100.0)
    two.start("Plan the upgrade", "", 130.0)
    done.start("Plan the upgrade", "", 100.0)
    done.finish()
    lines = progress_lines([one, two, done], now=172.0)
    assert "2 cluster(s) working" in lines[0]
    assert lines[1].split()[:2] == ["cluster1", "Restart"]
    assert "(1m12s) - waiting for restarted workloads to become Ready" in lines[1]
    assert lines[2].endswith("Plan the upgrade (42s)")
    assert not any("cluster10" in line for line in lines)
    assert progress_lines([done], now=200.0) == []


def test_the_result_table_says_ok_failed_at_kept_and_not_reached():
    ok, failed, kept, never, lost = (ClusterState(n) for n in ("c1", "c2", "c3", "c4", "c5"))
    for cluster in (ok, failed, kept, lost):
        cluster.start("Plan the upgrade", "", 0.0)
    ok.note = "upgraded 1-30-dev -> 1-31-0"
    failed.failure = ("Move the canary namespaces and gate on their health", "probe not Ready", False)
    kept.kept.append(("1-30-dev", "pod misc/bare"))
    lost.failure = ("Plan the upgrade", "connection refused", True)
    outcome = {"c1": (False, False), "c2": (True, False), "c3": (False, False),
               "c4": (False, False), "c5": (False, True)}
    lines = result_lines([ok, failed, kept, never, lost], outcome.get)
    table = dict(line.split(None, 1) for line in lines[2:])
    assert table == {
        "c1": "ok (upgraded 1-30-dev -> 1-31-0)",
        "c2": "failed at Move the canary namespaces and gate on their health: probe not Ready",
        "c3": "ok, kept 1-30-dev because it is still used by pod misc/bare",
        "c4": "not reached",
        "c5": "unreachable at Plan the upgrade: connection refused",
    }


def test_a_failure_without_a_recorded_step_names_the_last_step():
    cluster = ClusterState("c1")
    cluster.start("Hold the run lock", "", 0.0)
    assert cluster.result(True, False) == "failed at Hold the run lock: no message"


@pytest.mark.parametrize("seconds,text", [(5, "5s"), (72, "1m12s"), (3725, "1h02m")])
def test_durations_read_as_a_person_writes_them(seconds, text):
    assert format_duration(seconds) == text
