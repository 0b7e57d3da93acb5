"""KWOK stages of the local fleet: KWOK's own fast pod stages, taken from the KWOK module it is
built from, plus two stages chosen by the pod label HOLD_LABEL:

  localfleet.meshfleet.io/hold=not-ready   the pod runs but never turns Ready
  localfleet.meshfleet.io/hold=fail        the pod ends in phase Failed (its containers exit 1)

Every other pod moves as with KWOK's defaults (Running and Ready at once). Node stages are not
written, so KWOK keeps its default node stages.
"""

from pathlib import Path

import yaml

from . import paths, versions
from .progress import FleetError

HOLD_LABEL = "localfleet.meshfleet.io/hold"
# Set by the istiod supervisor on an istiod pod once the real istiod behind it is ready.
ISTIOD_SERVING = "localfleet.meshfleet.io/istiod-serving"
_ISTIOD = {"key": '.metadata.labels["app"]', "operator": "In", "values": ["istiod"]}
_NOT_ISTIOD = dict(_ISTIOD, operator="NotIn")
HOLDS = ("not-ready", "fail")
_HOLD_KEY = f'.metadata.labels["{HOLD_LABEL}"]'
_UNHELD = {"key": _HOLD_KEY, "operator": "NotIn", "values": list(HOLDS)}

_STARTED = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: %(reason)s
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: %(reason)s
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: %(started)s
  state:
%(state)s
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: %(phase)s
startTime: {{ $now | Quote }}
"""

_RUNNING = """\
    running:
      startedAt: {{ $now | Quote }}"""

_FAILED = """\
    terminated:
      exitCode: 1
      finishedAt: {{ $now | Quote }}
      reason: Error
      message: failed by the localfleet hold=fail stage
      startedAt: {{ $now | Quote }}"""

_TEMPLATES = {
    "not-ready": _STARTED % {"reason": "ContainersNotReady", "started": "true",
                             "state": _RUNNING, "phase": "Running"},
    "fail": _STARTED % {"reason": "PodFailed", "started": "false",
                        "state": _FAILED, "phase": "Failed"},
}


def kwok_stage_dir() -> Path:
    module = Path(paths.go_env_dirs()["GOMODCACHE"]) / "sigs.k8s.io" / f"kwok@v{versions.KWOK}"
    return module / "kustomize" / "stage" / "pod" / "fast"


def default_pod_stages() -> list:
    """KWOK's fast pod stages (pod-ready, pod-complete, pod-delete), as its module ships them."""
    directory = kwok_stage_dir()
    try:
        listed = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        return [yaml.safe_load((directory / name).read_text()) for name in listed]
    except OSError as err:
        raise FleetError(f"KWOK's default stages are missing ({err}): run "
                         "'python -m localfleet build kwok' to fetch its module") from err


def hold_stage(hold: str) -> dict:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage",
        "metadata": {"name": f"localfleet-hold-{hold}"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [
                {"key": _HOLD_KEY, "operator": "In", "values": [hold]},
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.podIP", "operator": "DoesNotExist"},
            ]},
            "next": {"statusTemplate": _TEMPLATES[hold]},
        },
    }


def istiod_stages(ready_template: str) -> list:
    """With real istiods, an istiod pod runs not Ready until its istiod is serving."""
    base = [dict(_ISTIOD), dict(_UNHELD),
            {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}]
    serving = {"key": f'.metadata.annotations["{ISTIOD_SERVING}"]', "operator": "In",
               "values": ["true"]}
    not_ready = {"key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                 "operator": "In", "values": ["False"]}
    return [_stage("localfleet-istiod-starting",
                   base + [{"key": ".status.podIP", "operator": "DoesNotExist"}],
                   _TEMPLATES["not-ready"]),
            _stage("localfleet-istiod-serving", base + [serving, not_ready], ready_template)]


def _stage(name: str, expressions: list, template: str) -> dict:
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"},
                     "selector": {"matchExpressions": expressions},
                     "next": {"statusTemplate": template}}}


def fleet_stages(real_istiod: bool = False) -> list:
    """Default stages with held pods excluded from the ones that start and complete pods (and,
    with real istiods, istiod pods from the one that makes pods Ready at once)."""
    stages = default_pod_stages()
    ready_template = None
    for stage in stages:
        if stage["metadata"]["name"] in ("pod-ready", "pod-complete"):
            stage["spec"]["selector"]["matchExpressions"].append(dict(_UNHELD))
        if stage["metadata"]["name"] == "pod-ready":
            ready_template = stage["spec"]["next"]["statusTemplate"]
            if real_istiod:
                stage["spec"]["selector"]["matchExpressions"].append(dict(_NOT_ISTIOD))
    extra = istiod_stages(ready_template) if real_istiod else []
    return stages + [hold_stage(hold) for hold in HOLDS] + extra


def write(path: Path, real_istiod: bool = False) -> None:
    path.write_text(yaml.safe_dump_all(fleet_stages(real_istiod), sort_keys=False))
