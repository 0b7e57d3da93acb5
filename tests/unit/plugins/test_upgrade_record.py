import json

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils.upgrade_record import (
    HISTORY_LIMIT,
    CanaryRecord,
    gate_message,
    gate_state,
    history_of,
    needs_write,
    record_body,
    record_facts,
    record_of,
)


def canary(context, revision=None, phase=None, error=None):
    record = {"revision": revision, "phase": phase, "run_id": "run-1",
              "updated": "2026-11-26T16:00:00Z"} if revision else {}
    return CanaryRecord(context, record, error)


def test_the_same_revision_and_phase_is_not_written_again():
    current = record_of(record_body("1-31-0", "passed", "run-1"))
    assert not needs_write(current, "1-31-0", "passed")
    assert needs_write(current, "1-31-0", "failed")
    assert needs_write(current, "1-32-0", "passed")
    assert needs_write({}, "1-31-0", "started")


def test_the_record_names_revision_phase_and_run():
    body = record_body("1-31-0", "started", "run-7")
    assert (body["metadata"]["namespace"], body["metadata"]["name"]) == ("kube-system", "meshfleet-upgrade")
    assert {k: body["data"][k] for k in ("revision", "phase", "run_id")} == {
        "revision": "1-31-0", "phase": "started", "run_id": "run-7"}


def test_the_gate_opens_when_every_canary_passed_the_revision():
    canaries = [canary("eu1", "1-31-0", "passed"), canary("eu2", "1-31-0", "passed")]
    assert gate_state(canaries, "1-31-0") == "open"


def test_no_canary_clusters_open_the_gate():
    assert gate_state([], "1-31-0") == "open"


@pytest.mark.parametrize("record", [
    dict(),
    dict(revision="1-31-0", phase="started"),
    dict(revision="1-30-3", phase="passed"),
    dict(error="connection refused"),
])
def test_the_gate_waits_for_a_canary_that_may_still_pass(record):
    canaries = [canary("eu1", "1-31-0", "passed"), canary("eu2", **record)]
    assert gate_state(canaries, "1-31-0") == "waiting"


@pytest.mark.parametrize("phase", ["failed", "rolled-back"])
def test_the_gate_closes_when_a_canary_failed_or_went_back(phase):
    canaries = [canary("eu1", "1-31-0", phase), canary("eu2", "1-31-0", "started")]
    assert gate_state(canaries, "1-31-0") == "closed"


def test_a_failure_of_another_revision_does_not_close_the_gate():
    assert gate_state([canary("eu1", "1-30-3", "failed")], "1-31-0") == "waiting"


def test_the_message_names_the_cluster_and_each_canary():
    message = gate_message("prod-us1", "1-31-0", [
        canary("eu1", "1-31-0", "failed"), canary("eu2"), canary("eu3", error="connection refused")])
    assert message.startswith("prod-us1: the canary wave has not passed an upgrade to 1-31-0")
    assert "eu1: failed 1-31-0 (run run-1" in message
    assert "eu2: no upgrade recorded" in message
    assert "eu3: unreadable (connection refused)" in message
    assert "meshfleet_canary_wait" in message


def test_an_earlier_runs_failure_waits_for_a_new_attempt():
    failed = canary("eu1", "1-31-0", "failed")  # updated 2026-11-26T16:00:00Z
    assert gate_state([failed], "1-31-0", since="2026-11-26T16:05:00Z") == "waiting"
    assert gate_state([failed], "1-31-0", since="2026-11-26T16:00:00Z") == "closed"
    assert gate_state([failed], "1-31-0", since="2026-11-26T15:59:00Z") == "closed"


def test_each_transition_is_appended_to_the_history_oldest_first():
    started = record_body("1-31-0", "started", "run-1")
    passed = record_body("1-31-0", "passed", "run-1", started)
    history = history_of(passed)
    assert [(h["revision"], h["phase"], h["run_id"]) for h in history] == [
        ("1-31-0", "started", "run-1"), ("1-31-0", "passed", "run-1")]
    assert history[-1]["updated"] == passed["data"]["updated"]
    assert all(isinstance(value, str) for value in passed["data"].values()), "ConfigMap data are strings"


def test_the_history_keeps_only_the_last_transitions():
    body = None
    for number in range(HISTORY_LIMIT + 5):
        body = record_body("1-31-0", "started" if number % 2 else "failed", "run-%d" % number, body)
    history = history_of(body)
    assert len(history) == HISTORY_LIMIT
    assert history[0]["run_id"] == "run-5" and history[-1]["run_id"] == "run-%d" % (HISTORY_LIMIT + 4)


def test_the_current_fields_leave_the_history_out():
    body = record_body("1-31-0", "passed", "run-1", record_body("1-31-0", "started", "run-1"))
    assert set(record_of(body)) == {"revision", "phase", "run_id", "updated"}
    assert not needs_write(record_of(body), "1-31-0", "passed")


def test_a_record_written_before_histories_counts_as_one_transition():
    legacy = {"data": {"revision": "1-30-dev", "phase": "passed", "run_id": "old",
                       "updated": "2026-11-01T10:00:00Z"}}
    assert history_of(legacy) == [dict(legacy["data"])]
    body = record_body("1-31-0", "started", "new", legacy)
    assert [h["run_id"] for h in history_of(body)] == ["old", "new"]


@pytest.mark.parametrize("history", ["not json", json.dumps({"a": 1}), json.dumps([1, "x"])])
def test_an_unreadable_history_counts_as_none(history):
    broken = {"data": {"revision": "1-31-0", "phase": "passed", "run_id": "r",
                       "updated": "2026-11-01T10:00:00Z", "history": history}}
    assert history_of(broken) == []
    assert [h["run_id"] for h in history_of(record_body("1-31-0", "failed", "s", broken))] == ["s"]


def test_the_facts_carry_the_current_fields_and_the_parsed_history():
    assert record_facts(None) == {} and record_facts({"data": {}}) == {}
    body = record_body("1-31-0", "passed", "run-1", record_body("1-31-0", "started", "run-1"))
    facts = record_facts(body)
    assert facts["phase"] == "passed" and facts["run_id"] == "run-1"
    assert [h["phase"] for h in facts["history"]] == ["started", "passed"]
