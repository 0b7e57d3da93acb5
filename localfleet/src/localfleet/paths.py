"""Where the local fleet keeps its cache (builds) and its state (running fleets)."""

import os
from pathlib import Path

# The meshfleet checkout this package lives in (<checkout>/localfleet/src/localfleet/paths.py):
# running fleets and the virtual environment are kept there, the shared release trees beside it.
REPO_ROOT = Path(__file__).resolve().parents[3]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meshfleet"


def go_env_dirs() -> dict:
    root = cache_root() / "go"
    return {
        "GOMODCACHE": str(root / "mod"),
        "GOCACHE": str(root / "build"),
        "GOPATH": str(root / "path"),
    }


def bin_cache() -> Path:
    return cache_root() / "bin"


def charts_cache() -> Path:
    return cache_root() / "charts"


def state_root() -> Path:
    return Path(os.environ.get("MESHFLEET_STATE_DIR") or REPO_ROOT / ".localfleet")


def upstream_istio_dir() -> Path:
    """Istio release trees the module proxy does not serve (read only; see its README)."""
    return Path(os.environ.get("MESHFLEET_UPSTREAM_ISTIO")
                or REPO_ROOT.parent / "shared" / "upstream" / "istio")


def venv_dir() -> Path:
    return Path(os.environ.get("MESHFLEET_VENV") or REPO_ROOT / ".venv")
