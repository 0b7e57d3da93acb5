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


def fleet_stages() -> list:
    """Default stages with held pods excluded from the ones that start and complete pods."""
    stages = default_pod_stages()
    for stage in stages:
        if stage["metadata"]["name"] in ("pod-ready", "pod-complete"):
            stage["spec"]["selector"]["matchExpressions"].append(dict(_UNHELD))
    return stages + [hold_stage(hold) for hold in HOLDS]


def write(path: Path) -> None:
    path.write_text(yaml.safe_dump_all(fleet_stages(), sort_keys=False))
