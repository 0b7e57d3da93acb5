# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""The fleet report's summary, computed from the report itself (the JSON's data), so the HTML
dashboard has no second source of truth."""

from __future__ import annotations

from ansible_collections.meshfleet.istio.plugins.module_utils.fleet_order import natural_key

PHASE_ORDER = ("passed", "failed", "rolled-back", "started")


def _percent(part, whole):
    return int(round(100.0 * part / whole)) if whole else 0


def fleet_summary(report):
    """Clusters per revision, clusters with problems, and the progress of the fleet's last
    upgrade (the revision of the newest upgrade record and each cluster's phase for it)."""
    report = report or {}
    names = sorted(report, key=natural_key)
    unreachable = [n for n in names if (report[n] or {}).get("unreachable")]
    readable = [n for n in names if n not in unreachable]
    with_problems = [n for n in names if n in unreachable or (report[n] or {}).get("problems")]

    revisions = {}
    for name in readable:
        mesh = report[name]
        for revision, info in (mesh.get("revisions") or {}).items():
            entry = revisions.setdefault(revision, {"revision": revision, "versions": [],
                                                    "clusters": [], "default_on": []})
            version = (info or {}).get("version", "")
            if version and version not in entry["versions"]:
                entry["versions"].append(version)
            entry["clusters"].append(name)
        default = mesh.get("default_revision")
        if default in revisions:
            revisions[default]["default_on"].append(name)
    for entry in revisions.values():
        entry["version"] = ", ".join(sorted(entry["versions"], key=natural_key))
        entry["percent"] = _percent(len(entry["clusters"]), len(names))

    return {
        "clusters": len(names),
        "names": names,
        "unreachable": unreachable,
        "with_problems": with_problems,
        "revisions": sorted(revisions.values(), key=lambda e: natural_key(e["revision"])),
        "upgrade": last_upgrade(report, readable, names),
    }


def last_upgrade(report, readable, names):
    """How the fleet stands on the revision of its newest upgrade record ({} when no cluster
    records an upgrade): the clusters in each phase of that upgrade and those not reached."""
    records = dict((n, (report[n].get("upgrade_record") or {})) for n in readable)
    newest = max((r for r in records.values() if r.get("revision")),
                 key=lambda r: r.get("updated", ""), default=None)
    if newest is None:
        return {}
    revision = newest["revision"]
    phases = dict((phase, []) for phase in PHASE_ORDER)
    not_reached = []
    for name in names:
        record = records.get(name, {})
        if record.get("revision") == revision and record.get("phase") in phases:
            phases[record["phase"]].append(name)
        else:
            not_reached.append(name)
    steps = [{"phase": phase, "clusters": phases[phase], "percent": _percent(len(phases[phase]), len(names))}
             for phase in PHASE_ORDER]
    steps.append({"phase": "not reached", "clusters": not_reached,
                  "percent": _percent(len(not_reached), len(names))})
    return {"revision": revision, "updated": newest.get("updated", ""),
            "run_id": newest.get("run_id", ""), "phases": phases, "not_reached": not_reached,
            "steps": steps, "done": len(phases["passed"]), "total": len(names)}


class FilterModule(object):
    def filters(self):
        return {"fleet_summary": fleet_summary}
