"""The one pod-ready rule: the Ready condition, and not terminating."""

from ansible_collections.meshfleet.istio.plugins.module_utils.pod_readiness import (
    is_ready,
    is_terminating,
)


def pod(ready=True, terminating=False):
    meta = {"name": "p", "namespace": "shop"}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def test_a_pod_is_ready_when_its_ready_condition_is_true():
    assert is_ready(pod())
    assert not is_ready(pod(ready=False))
    assert not is_ready({"metadata": {"name": "p"}, "status": {"phase": "Pending"}})


def test_a_terminating_pod_is_not_ready_even_with_its_ready_condition_true():
    assert is_terminating(pod(terminating=True)) and not is_terminating(pod())
    assert not is_ready(pod(terminating=True))
