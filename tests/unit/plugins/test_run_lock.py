import datetime
import os
import subprocess
import sys

import pytest

from ansible_collections.meshfleet.istio.plugins.module_utils import lock_keeper, run_lock


def lease(holder, seconds_ago=0, ttl=120, renew=None, version="7"):
    stamp = run_lock.now() - datetime.timedelta(seconds=seconds_ago)
    body = run_lock.lease_body(holder, ttl, version, moment=stamp)
    if renew is False:
        del body["metadata"]["annotations"]
    elif renew is not None:
        body["metadata"]["annotations"][run_lock.RENEW_ANNOTATION] = str(renew)
    return body


def test_a_free_cluster_is_locked_by_creating_the_lease():
    assert run_lock.decide_acquire(None, "run-b") == "create"


def test_our_own_lock_is_renewed():
    assert run_lock.decide_acquire(lease("run-b"), "run-b") == "renew"


def test_renewals_are_every_sixth_of_the_duration_and_at_most_20_seconds():
    assert [run_lock.renew_interval(ttl) for ttl in (3, 12, 60, 120, 3600)] == [1, 2, 10, 20, 20]


@pytest.mark.parametrize("seconds_ago, state", [(0, "live"), (60, "live"), (61, "stale"),
                                                (119, "stale"), (120, "expired")])
def test_a_lock_is_live_while_renewed_stale_after_three_missed_renewals_then_expired(
        seconds_ago, state):
    assert run_lock.lock_state(lease("run-a", seconds_ago))["state"] == state


def test_a_lease_that_does_not_say_how_often_it_is_renewed_counts_a_sixth_of_its_duration():
    assert run_lock.lock_state(lease("run-a", 1790, ttl=3600, renew=False))["state"] == "live"
    stale = run_lock.lock_state(lease("run-a", 1810, ttl=3600, renew=False))
    assert (stale["state"], stale["renew_seconds"]) == ("stale", 600)


def test_the_state_of_no_lease_and_of_a_released_one():
    assert run_lock.lock_state(None)["state"] == "absent"
    released = run_lock.released_body(lease("run-a"))
    assert run_lock.lock_state(released)["state"] == "free"
    assert run_lock.last_holder(released) == "run-a"
    assert run_lock.describe(run_lock.lock_state(released)) == "free"


def test_a_live_lock_of_another_run_refuses_with_its_liveness_and_the_forced_way_out():
    with pytest.raises(run_lock.LockHeld) as refused:
        run_lock.decide_acquire(lease("run-a", 5), "run-b")
    assert "live: renewed 5s ago" in str(refused.value)
    assert "meshfleet_force_break_lock=run-a" in str(refused.value)


def test_a_stale_lock_refuses_with_its_age_and_the_way_to_break_it():
    with pytest.raises(run_lock.LockHeld) as refused:
        run_lock.decide_acquire(lease("run-a", 90), "run-b")
    assert "stale: its renewals stopped 90s ago" in str(refused.value)
    assert "expires in 30s" in str(refused.value)
    assert "meshfleet_break_lock=run-a" in str(refused.value)


def test_an_expired_or_released_lock_is_taken_without_naming_its_holder():
    assert run_lock.decide_acquire(lease("run-a", seconds_ago=121), "run-b") == "take"
    assert run_lock.decide_acquire(run_lock.released_body(lease("run-a")), "run-b") == "take"


def test_breaking_by_name_takes_a_stale_lock_and_never_a_live_one():
    assert run_lock.decide_acquire(lease("run-a", 90), "run-b", break_holder="run-a") == "take"
    with pytest.raises(run_lock.LockHeld):
        run_lock.decide_acquire(lease("run-a", 5), "run-b", break_holder="run-a")
    with pytest.raises(run_lock.LockHeld):
        run_lock.decide_acquire(lease("run-a", 90), "run-b", break_holder="run-x")


def test_forcing_by_name_takes_a_live_lock_of_that_holder_only():
    assert run_lock.decide_acquire(lease("run-a", 5), "run-b",
                                   force_break_holder=["run-a"]) == "take"
    with pytest.raises(run_lock.LockHeld):
        run_lock.decide_acquire(lease("run-a", 5), "run-b", force_break_holder=["run-x"])


def test_several_holders_break_the_lock_of_any_of_them_and_no_other():
    """One rerun of a fleet-wide run that died breaks the lock it left on each cluster."""
    assert run_lock.decide_acquire(lease("run-a", 90), "run-c",
                                   break_holder=["run-b", "run-a"]) == "take"
    assert run_lock.decide_acquire(lease("run-a", 90), "run-c",
                                   break_holder="run-b, run-a") == "take"
    for names in (["run-ab", "run"], "run"):
        with pytest.raises(run_lock.LockHeld):
            run_lock.decide_acquire(lease("run-a", 90), "run-c", break_holder=names)


def test_the_fence_refuses_when_another_run_held_the_cluster_since_it_was_read():
    """Read at resourceVersion 7; a run took and released the lock since (now 9)."""
    released = run_lock.released_body(lease("run-a", version="9"))
    with pytest.raises(run_lock.LockMoved, match=r"\(run-a\) held this cluster after this run read"):
        run_lock.decide_acquire(released, "run-b", fence="7")
    assert run_lock.decide_acquire(released, "run-b", fence="9") == "take"


def test_the_fence_of_a_cluster_never_locked_refuses_a_lease_created_since():
    with pytest.raises(run_lock.LockMoved):
        run_lock.decide_acquire(lease("run-a", 300), "run-b", fence="")
    assert run_lock.decide_acquire(None, "run-b", fence="") == "create"


def test_the_fence_does_not_stop_the_run_that_holds_the_lock():
    assert run_lock.decide_acquire(lease("run-b", version="12"), "run-b", fence="7") == "renew"


def test_kubernetes_time_formats_parse():
    state = run_lock.lock_state({"metadata": {}, "spec": {
        "holderIdentity": "x", "renewTime": "2026-11-26T13:15:00Z", "leaseDurationSeconds": 60}},
        moment=datetime.datetime(2026, 11, 26, 13, 15, 30, tzinfo=datetime.timezone.utc))
    assert (state["age_seconds"], state["expires_in_seconds"]) == (30, 30)


# ---------------------------------------------------------------- the controller process

def test_the_controller_is_the_topmost_ansible_playbook_ancestor(tmp_path):
    """ansible-playbook starts a worker (a child with the same command line), which starts a
    module: the module finds the outer ansible-playbook, not its worker."""
    script = tmp_path / "ansible-playbook"
    script.write_text(
        "import os, subprocess, sys\n"
        "role = sys.argv[1] if len(sys.argv) > 1 else 'controller'\n"
        "if role == 'module':\n"
        "    from ansible_collections.meshfleet.istio.plugins.module_utils import lock_keeper\n"
        "    print(lock_keeper.controller_process()[0], os.getppid())\n"
        "    sys.exit(0)\n"
        "print(os.getpid())\n"
        "sys.stdout.flush()\n"
        "subprocess.run([sys.executable, __file__,\n"
        "                'worker' if role == 'controller' else 'module'], check=True)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    controller, worker, found, module_parent = out
    assert found == controller
    assert module_parent == worker != controller


def test_a_process_is_alive_until_it_exits_and_a_reused_pid_is_not_the_same_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    stat = lock_keeper._stat(child.pid)
    process = (child.pid, stat[1])
    assert lock_keeper.process_alive(process)
    assert not lock_keeper.process_alive((child.pid, "1"))
    child.kill()
    child.wait()
    assert not lock_keeper.process_alive(process)


def test_a_holder_still_holding_is_refused_as_held_whatever_the_fence():
    with pytest.raises(run_lock.LockHeld, match="run-a, live"):
        run_lock.decide_acquire(lease("run-a", 5, version="9"), "run-b", fence="7")


def test_forcing_takes_a_live_lock_whose_renewals_moved_it_past_the_fence():
    assert run_lock.decide_acquire(lease("run-a", 1, version="9"), "run-b", fence="7",
                                   force_break_holder="run-a") == "take"
