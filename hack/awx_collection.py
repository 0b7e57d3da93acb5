"""Provide the awx.awx collection for the linters and tests, without Galaxy.

awx.awx (the modules that configure AWX / Automation Controller) is published on Galaxy, which is
not reachable here, and is not on PyPI as a package of its own. The `ansible` 11 package on PyPI
ships it (ansible 11.13.0: awx.awx 24.6.1; later `ansible` releases dropped it). Installing all of
`ansible` 11 into .venv would replace the `ansible` 14 that the project pins, so instead its wheel is
downloaded once (hash-pinned) into the cache and only ansible_collections/awx/awx is extracted:

    ~/.cache/meshfleet/wheels/ansible-11.13.0-py3-none-any.whl
    ~/.cache/meshfleet/collections/ansible_collections/awx/awx/      (MANIFEST.json: 24.6.1)

($XDG_CACHE_HOME/meshfleet when XDG_CACHE_HOME is set, like localfleet's cache.) Put the printed
directory on ANSIBLE_COLLECTIONS_PATH (hack/check does for ansible-lint) or on sys.path (the tests
import the modules to read their argument specs). Safe to run again and concurrently: it does
nothing once the collection is there.

Usage: python hack/awx_collection.py [--quiet]    prints the collections directory
The bash wrapper hack/awx-collection is the usual entry point.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# The wheel that carries awx.awx, and what it must hold. The hash is the one PyPI publishes for
# ansible-11.13.0-py3-none-any.whl; pip refuses any other file.
WHEEL_REQUIREMENT = "ansible==11.13.0"
WHEEL_NAME = "ansible-11.13.0-py3-none-any.whl"
WHEEL_SHA256 = "7f1c9c6a6026ff214d9240647e4d2b019b2a9d4c7a2bc733932bcf92af80ab04"
AWX_VERSION = "24.6.1"
MEMBER_PREFIX = "ansible_collections/awx/awx/"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meshfleet"


def collections_dir() -> Path:
    return cache_root() / "collections"


def collection_dir() -> Path:
    return collections_dir() / "ansible_collections" / "awx" / "awx"


def installed_version(root: Path) -> str | None:
    try:
        return json.loads((root / "MANIFEST.json").read_text())["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(quiet: bool) -> Path:
    wheels = cache_root() / "wheels"
    wheel = wheels / WHEEL_NAME
    if wheel.is_file() and _sha256(wheel) == WHEEL_SHA256:
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheels) as tmp:
        requirement = Path(tmp) / "requirement.txt"
        requirement.write_text(f"{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n")
        if not quiet:
            print(f"[awx-collection] downloading {WHEEL_NAME} from PyPI (once; about 58 MB)", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "--require-hashes", "--dest", tmp, "-r", str(requirement)],
            check=True,
        )
        got = Path(tmp) / WHEEL_NAME
        if _sha256(got) != WHEEL_SHA256:  # pip checked it already; never trust a partial file
            raise SystemExit(f"[awx-collection] {got.name}: unexpected sha256")
        os.replace(got, wheel)
    return wheel


def extract(wheel: Path, dest: Path) -> int:
    """Extract the awx.awx members of the wheel into dest (a fresh directory); return the file count."""
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(MEMBER_PREFIX) or info.is_dir():
                continue
            rel = Path(info.filename[len(MEMBER_PREFIX):])
            if rel.is_absolute() or ".." in rel.parts:
                raise SystemExit(f"[awx-collection] unsafe member in {wheel.name}: {info.filename}")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    return count


def ensure(quiet: bool = False) -> Path:
    """Make sure awx.awx AWX_VERSION is in the cache; return the collections directory."""
    root = collection_dir()
    if installed_version(root) == AWX_VERSION:
        return collections_dir()
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".awx-collection.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed_version(root) == AWX_VERSION:  # another run finished it meanwhile
            return collections_dir()
        wheel = download_wheel(quiet)
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=".awx-"))
        try:
            count = extract(wheel, staging)
            if installed_version(staging) != AWX_VERSION:
                raise SystemExit(f"[awx-collection] {wheel.name} does not hold awx.awx {AWX_VERSION}")
            if root.exists():
                shutil.rmtree(root)
            os.replace(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not quiet:
            print(f"[awx-collection] awx.awx {AWX_VERSION}: {count} files in {root}", file=sys.stderr)
    return collections_dir()


if __name__ == "__main__":
    print(ensure(quiet="--quiet" in sys.argv[1:]))
