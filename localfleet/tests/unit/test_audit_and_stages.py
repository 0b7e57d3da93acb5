"""The audit write counter and the fleet's KWOK stages (pure logic, no cluster)."""

import json

from localfleet import audit, stages


def event(verb, user="alice", uri="/api/v1/namespaces/a/configmaps", stage="ResponseComplete",
          impersonated=None):
    entry = {"kind": "Event", "stage": stage, "verb": verb, "requestURI": uri,
             "user": {"username": user}, "objectRef": {"resource": "configmaps", "name": "c"},
             "responseStatus": {"code": 201}}
    if impersonated:
        entry["impersonatedUser"] = {"username": impersonated}
    return json.dumps(entry) + "\n"


def test_writes_are_counted_by_verb_user_and_marker(tmp_path):
    log = tmp_path / "audit.log"
    log.write_text(event("create") + event("get") + event("watch", stage="ResponseStarted"))
    marker = audit.mark(log)
    with log.open("a") as out:
        out.write(event("patch") + event("delete", user="bob")
                  + event("create", uri="/api/v1/namespaces/a/configmaps?dryRun=All")
                  + event("update", user="admin", impersonated="system:serviceaccount:x:y")
                  + '{"kind": "Event", "verb": "cre')  # a line still being written
    assert audit.count_writes(log) == 4
    assert audit.count_writes(log, since=marker) == 3
    assert audit.count_writes(log, since=marker, user="alice") == 1
    assert audit.count_writes(log, user="system:serviceaccount:x:y") == 1
    assert audit.count_writes(log, user="admin") == 0
    assert audit.describe(audit.writes(log, marker, "bob")[0]) == "delete configmaps c as bob: 201"


def test_a_marker_inside_a_line_skips_that_line(tmp_path):
    log = tmp_path / "audit.log"
    log.write_text(event("create") + event("update"))
    assert audit.count_writes(log, since=5) == 1
    assert audit.count_writes(tmp_path / "missing.log") == 0


def test_held_pods_get_only_their_own_stage():
    by_name = {s["metadata"]["name"]: s for s in stages.fleet_stages()}
    assert {"pod-ready", "pod-complete", "pod-delete", "localfleet-hold-not-ready",
            "localfleet-hold-fail"} == set(by_name)
    label_key = f'.metadata.labels["{stages.HOLD_LABEL}"]'
    for name in ("pod-ready", "pod-complete"):
        held = [e for e in by_name[name]["spec"]["selector"]["matchExpressions"]
                if e["key"] == label_key]
        assert held == [{"key": label_key, "operator": "NotIn", "values": list(stages.HOLDS)}]
    assert "phase: Failed" in by_name["localfleet-hold-fail"]["spec"]["next"]["statusTemplate"]
    not_ready = by_name["localfleet-hold-not-ready"]["spec"]["next"]["statusTemplate"]
    assert "phase: Running" in not_ready and "ready: true" not in not_ready


def test_with_real_istiods_an_istiod_pod_turns_ready_only_once_marked_serving():
    plain = {s["metadata"]["name"]: s for s in stages.fleet_stages()}
    real = {s["metadata"]["name"]: s for s in stages.fleet_stages(real_istiod=True)}
    assert set(real) - set(plain) == {"localfleet-istiod-starting", "localfleet-istiod-serving"}
    app_key = '.metadata.labels["app"]'
    assert {"key": app_key, "operator": "NotIn", "values": ["istiod"]} in (
        real["pod-ready"]["spec"]["selector"]["matchExpressions"])
    assert not any(e["key"] == app_key
                   for e in plain["pod-ready"]["spec"]["selector"]["matchExpressions"])
    starting = real["localfleet-istiod-starting"]["spec"]
    assert "ready: true" not in starting["next"]["statusTemplate"]
    serving = real["localfleet-istiod-serving"]["spec"]
    assert {"key": f'.metadata.annotations["{stages.ISTIOD_SERVING}"]', "operator": "In",
            "values": ["true"]} in serving["selector"]["matchExpressions"]
    assert (serving["next"]["statusTemplate"]
            == real["pod-ready"]["spec"]["next"]["statusTemplate"])
