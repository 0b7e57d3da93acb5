import datetime

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import run_lock


def lease(holder, seconds_ago=0, ttl=600):
    stamp = run_lock.now() - datetime.timedelta(seconds=seconds_ago)
    return {"metadata": {"resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": ttl,
                     "renewTime": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


def test_a_free_cluster_is_locked_by_creating_the_lease():
    assert run_lock.decide_acquire(None, "run-b") == "create"


def test_our_own_lock_is_renewed():
    assert run_lock.decide_acquire(lease("run-b"), "run-b") == "renew"


def test_a_live_lock_of_another_run_refuses_with_the_way_out():
    with pytest.raises(run_lock.LockHeld, match="held.*run-a|run-a.*meshfleet_break_lock=run-a"):
        run_lock.decide_acquire(lease("run-a"), "run-b")


def test_an_expired_lock_is_taken_over():
    assert run_lock.decide_acquire(lease("run-a", seconds_ago=601), "run-b") == "take"


def test_a_live_lock_is_broken_only_by_naming_its_holder():
    assert run_lock.decide_acquire(lease("run-a"), "run-b", break_holder="run-a") == "take"
    with pytest.raises(run_lock.LockHeld):
        run_lock.decide_acquire(lease("run-a"), "run-b", break_holder="run-x")


def test_several_holders_break_the_lock_of_any_of_them_and_no_other():
    """One rerun of a fleet-wide run that died breaks the lock it left on each cluster."""
    holders = ["run-b", "run-a"]
    assert run_lock.decide_acquire(lease("run-a"), "run-c", break_holder=holders) == "take"
    for names in (["run-ab", "run"], "run"):
        with pytest.raises(run_lock.LockHeld):
            run_lock.decide_acquire(lease("run-a"), "run-c", break_holder=names)


def test_kubernetes_time_formats_parse():
    assert run_lock.expires_at({"spec": {"renewTime": "2026-11-26T13:15:00Z",
                                         "leaseDurationSeconds": 60}}).minute == 16
