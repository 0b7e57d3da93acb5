"""Make the checkout importable as ansible_collections.meshfleet.istio for unit tests."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "build" / "pytest-collections"


def _link_collection():
    link = ROOT / "ansible_collections" / "meshfleet" / "istio"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


_link_collection()
