"""Make the checkout importable as ansible_collections.meshfleet.istio for unit tests."""

import contextlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "build" / "pytest-collections"


def link_collection():
    try:
        import ansible_collections.meshfleet.istio  # noqa: F401 (an installed copy is enough)
        return
    except ImportError:
        pass
    link = ROOT / "ansible_collections" / "meshfleet" / "istio"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        with contextlib.suppress(FileExistsError):  # another xdist worker made it meanwhile
            link.symlink_to(REPO)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


link_collection()
