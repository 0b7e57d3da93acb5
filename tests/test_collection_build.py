"""The collection as users get it: `ansible-galaxy collection build` of the checkout, installed
offline into a fresh collections path, holds what should ship (and nothing of the dev tooling)
and is usable by name from there."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

_spec = importlib.util.spec_from_file_location("collection_env", REPO / "hack" / "collection_env.py")
collection_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(collection_env)
_spec = importlib.util.spec_from_file_location("awx_collection", REPO / "hack" / "awx_collection.py")
awx_collection = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(awx_collection)

META = yaml.safe_load((REPO / "galaxy.yml").read_text())
FQCN = f"{META['namespace']}.{META['name']}"

# Dev tooling that must never ship (galaxy.yml build_ignore).
NOT_SHIPPED = [
    ".venv", ".localfleet", ".ci", ".git", "localfleet", "hack", "build", "benchmarks",
    "tests/unit/tooling", "tests/conftest.py", "tests/test_collection_build.py",
    "pytest.ini", "requirements-dev.txt", "galaxy.yml",
]


def run(*cmd, env=None, cwd=REPO):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def ansible_env(collections: Path) -> dict:
    """Only the installed copy and the venv's kubernetes.core on the collections path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "K8S_AUTH_"))}
    kubernetes_root = collection_env.find_kubernetes_namespace().parent.parent  # .../site-packages
    env["ANSIBLE_COLLECTIONS_PATH"] = f"{collections}:{kubernetes_root}"
    env["ANSIBLE_LOCAL_TEMP"] = str(collections.parent / "ansible-tmp")
    env["ANSIBLE_HOME"] = str(collections.parent / "ansible-home")
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("galaxy")
    run(BIN / "ansible-galaxy", "collection", "build", REPO, "--output-path", tmp / "dist")
    (tarball,) = (tmp / "dist").glob(f"{META['namespace']}-{META['name']}-*.tar.gz")
    assert tarball.name == f"{META['namespace']}-{META['name']}-{META['version']}.tar.gz"
    collections = tmp / "collections"
    run(BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", collections, tarball,
        env=ansible_env(collections))
    root = collections / "ansible_collections" / META["namespace"] / META["name"]
    assert (root / "MANIFEST.json").is_file()
    return {"tarball": tarball, "collections": collections, "root": root}


def test_dev_tooling_is_not_shipped(installed):
    root = installed["root"]
    shipped = [p for p in NOT_SHIPPED if (root / p).exists() or (root / p).is_symlink()]
    assert not shipped, f"dev files in the built collection (add them to build_ignore in galaxy.yml): {shipped}"
    with tarfile.open(installed["tarball"]) as tar:
        members = tar.getnames()
    assert not [m for m in members if m.split("/")[0] in {".venv", "localfleet", "hack", "build", ".git"}]


def test_ships_exactly_the_collection_files(installed):
    """What the tarball holds is what hack/collection-env copies for ansible-test (minus galaxy.yml):
    the files git knows of, minus build_ignore. A difference means a file git ignores would ship
    (add it to build_ignore) or the two disagree about a pattern."""
    root = installed["root"]
    got = {
        str(p.relative_to(root)) for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.name not in ("MANIFEST.json", "FILES.json")
    }
    want = set(collection_env.collection_files(META)) - {"galaxy.yml"}
    assert got == want, f"only in the tarball: {sorted(got - want)}; only in the work tree: {sorted(want - got)}"


def test_ships_the_collection_content(installed):
    root = installed["root"]
    for path in ("README.md", "LICENSE", "meta/runtime.yml", "changelogs/changelog.yaml"):
        assert (root / path).is_file(), f"{path} missing from the built collection"
    files = collection_env.collection_files(META)
    for directory in ("plugins", "roles", "playbooks", "meta", "rbac"):
        repo_files = {f for f in files if f.startswith(directory + "/")}
        shipped = {str(p.relative_to(root)) for p in root.glob(f"{directory}/**/*") if p.is_file()}
        assert repo_files <= shipped, f"{directory}/ not shipped whole: missing {sorted(repo_files - shipped)}"
    manifest = json.loads((root / "MANIFEST.json").read_text())["collection_info"]
    assert manifest["version"] == META["version"]
    assert manifest["dependencies"] == META["dependencies"]


def test_installed_collection_is_found_by_name(installed):
    env = ansible_env(installed["collections"])
    listed = run(BIN / "ansible-galaxy", "collection", "list", "-p", installed["collections"], FQCN,
                 "--format", "json", env=env)
    found = {name: info for paths in json.loads(listed.stdout).values() for name, info in paths.items()}
    assert found[FQCN]["version"] == META["version"]

    docs = run(BIN / "ansible-doc", "-l", FQCN, "-j", env=env)
    listed_modules = set(json.loads(docs.stdout) if docs.stdout.strip() else {})
    modules = {
        f"{FQCN}.{Path(f).stem}" for f in collection_env.collection_files(META)
        if f.startswith("plugins/modules/") and f.endswith(".py") and not Path(f).name.startswith("_")
    }
    assert modules <= listed_modules, f"modules not listed by ansible-doc: {sorted(modules - listed_modules)}"


def test_playbooks_resolve_from_the_installed_copy(installed):
    """Every shipped playbook is runnable by name (`ansible-playbook meshfleet.istio.<name>`): the
    syntax check resolves its roles and modules from the installed copy alone, plus awx.awx, the
    optional collection that controller_setup (and only it) needs."""
    playbooks = sorted(
        p for p in (installed["root"] / "playbooks").glob("*.y*ml") if p.suffix in (".yml", ".yaml")
    ) if (installed["root"] / "playbooks").is_dir() else []
    if not playbooks:
        pytest.skip("the collection has no playbooks yet")
    env = ansible_env(installed["collections"])
    env["ANSIBLE_COLLECTIONS_PATH"] += f":{awx_collection.ensure(quiet=True)}"
    failures = []
    for playbook in playbooks:
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", f"{FQCN}.{playbook.stem}"],
            capture_output=True, text=True, env=env, cwd=installed["collections"].parent, timeout=300,
        )
        if proc.returncode:
            failures.append(f"{FQCN}.{playbook.stem}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    assert not failures, "\n".join(failures)
