"""The Istio release trees the module proxy does not serve, from the shared upstream directory
(paths.upstream_istio_dir()): checked against its SHA256SUMS, unpacked once into the cache, and
the modules a tree's go.mod requires at versions the proxy refuses matched to their own
unpacked trees, so the tree builds exactly as released."""

import hashlib
import re
import shutil
import tarfile
from pathlib import Path

from . import paths
from .progress import FleetError

# module -> archive name prefix in the upstream directory ("<prefix>-<version>.tar.gz")
MODULE_ARCHIVES = {
    "istio.io/api": "api",
    "istio.io/client-go": "client-go",
    "github.com/envoyproxy/go-control-plane/envoy": "go-control-plane-envoy",
    "github.com/envoyproxy/go-control-plane/contrib": "go-control-plane-contrib",
    "github.com/agentgateway/agentgateway/api": "agentgateway-api",
}


def checked_archive(name: str) -> Path:
    """The archive's path, once its SHA256 matches its SHA256SUMS entry."""
    upstream = paths.upstream_istio_dir()
    path = upstream / name
    if not path.exists():
        raise FleetError(f"{path} is missing: the Istio release trees are expected in {upstream} "
                         "(set MESHFLEET_UPSTREAM_ISTIO to their directory)")
    expected = listed_sha256(upstream / "SHA256SUMS", name)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if expected != actual:
        raise FleetError(f"{path}: SHA256 {actual} differs from SHA256SUMS ({expected})")
    return path


def listed_sha256(sums: Path, name: str) -> str:
    for line in sums.read_text().splitlines():
        digest, _, listed = line.partition("  ")
        if listed.strip() == name:
            return digest
    raise FleetError(f"{sums} lists no checksum for {name}")


def archive_root(tar: tarfile.TarFile) -> str:
    return tar.getmembers()[0].name.split("/", 1)[0]


def unpack(name: str) -> Path:
    """The whole tree of an archive, unpacked under the cache (once); returns its directory."""
    target = paths.cache_root() / "src" / name.removesuffix(".tar.gz")
    if (target / ".complete").exists():
        return target / (target / ".complete").read_text().strip()
    archive = checked_archive(name)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        root = archive_root(tar)
        tar.extractall(partial, filter="data")
    (partial / ".complete").write_text(root + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target / root


def required_versions(gomod: str) -> dict:
    """module -> version for every requirement of a go.mod (block or single-line form)."""
    found = {}
    for module, version in re.findall(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s+//.*)?$",
                                      gomod, re.M):
        found.setdefault(module, version)
    return found


def local_replacements(gomod: str, available=None) -> tuple:
    """(module, unpacked tree) for each module the go.mod requires whose archive at exactly the
    required version is in the upstream directory."""
    available = set(available if available is not None else
                    (p.name for p in paths.upstream_istio_dir().glob("*.tar.gz")))
    required = required_versions(gomod)
    result = []
    for module, prefix in MODULE_ARCHIVES.items():
        archive = f"{prefix}-{required.get(module)}.tar.gz"
        if module in required and archive in available:
            result.append((module, archive))
    return tuple(result)


def source_commit(archive: str) -> str:
    """The commit SOURCES gives for an archive ("" when it names none)."""
    sources = paths.upstream_istio_dir() / "SOURCES"
    for line in sources.read_text().splitlines() if sources.exists() else ():
        if line.startswith(archive + " "):
            match = re.search(r"\bcommit ([0-9a-f]{40})\b", line)
            return match.group(1) if match else ""
    return ""
