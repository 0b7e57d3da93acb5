"""The execution environment's build context, as `hack/ee-context` writes it with ansible-builder
(no image is built here: that needs a container runtime and registries). The Containerfile must
install the pinned ansible-core and ansible-runner, the collection's Python and system
dependencies, kubernetes.core and meshfleet.istio (the tarball built from this checkout), and helm
only after its sha256 matched; the helm step itself is run against fake downloads."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from localfleet import versions

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
META = yaml.safe_load((REPO / "galaxy.yml").read_text())
_spec = importlib.util.spec_from_file_location("collection_env", REPO / "hack" / "collection_env.py")
collection_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(collection_env)
TARBALL = f"{META['namespace']}-{META['name']}-{META['version']}.tar.gz"


def pins(path: Path) -> dict:
    """name -> exact version of the name==version lines of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s#]+)\s*(#.*)?", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee") / "context"
    proc = subprocess.run([str(REPO / "hack" / "ee-context"), str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert proc.returncode == 0, f"hack/ee-context failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    return out


@pytest.fixture(scope="module")
def stages(context):
    """Containerfile lines per stage (FROM ... AS <name>), and the ARGs before the first stage."""
    found = {"": []}
    current = ""
    for line in (context / "Containerfile").read_text().splitlines():
        match = re.match(r"FROM \S+ AS (\w+)$", line)
        if match:
            current = match.group(1)
            found[current] = []
        found[current].append(line)
    return found


def global_args(stages) -> dict:
    return dict(re.fullmatch(r'ARG (\w+)="(.*)"', line).groups() for line in stages[""] if line.startswith("ARG "))


def test_build_context_files(context):
    build = context / "_build"
    for rel in ("requirements.txt", "requirements.yml", "bindep.txt", f"collections/{TARBALL}",
                "scripts/assemble", "scripts/introspect.py", "scripts/install-from-bindep", "scripts/check_ansible"):
        assert (build / rel).is_file(), f"_build/{rel} missing"
    assert [p.name for p in (build / "collections").iterdir()] == [TARBALL]


def test_pinned_ansible_core_and_runner_on_a_python_ansible_core_supports(stages):
    dev = pins(REPO / "requirements-dev.txt")
    args = global_args(stages)
    assert args["ANSIBLE_INSTALL_REFS"].split() == [f"ansible-core=={dev['ansible-core']}",
                                                    f"ansible-runner=={dev['ansible-runner']}"]
    assert "RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS" in stages["base"]
    minor = int(re.fullmatch(r"/usr/bin/python3\.(\d+)", args["PYCMD"]).group(1))
    assert minor >= 12, "ansible-core 2.21 runs on Python 3.12 or newer"
    assert args["PYPKG"] == f"python3.{minor}"


def test_the_collections_python_and_system_requirements(context, stages):
    build = context / "_build"
    assert requirement_lines(build / "requirements.txt") == requirement_lines(REPO / "requirements.txt")
    assert requirement_lines(build / "bindep.txt") == requirement_lines(REPO / "bindep.txt")
    builder = stages["builder"]
    assert "COPY _build/requirements.txt requirements.txt" in builder
    assert "COPY _build/bindep.txt bindep.txt" in builder
    (introspect,) = [line for line in builder if "introspect.py introspect" in line]
    assert "--user-pip=requirements.txt" in introspect and "--user-bindep=bindep.txt" in introspect
    assert "RUN /output/scripts/assemble" in builder
    assert "RUN /output/scripts/install-from-bindep && rm -rf /output/wheels" in stages["final"]
    # the same file is the collection's own dependency file for builders that add it elsewhere
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "requirements.txt"}


def test_kubernetes_core_and_meshfleet_istio_are_installed(context, stages):
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    by_name = {c["name"]: c for c in galaxy["collections"]}
    kubernetes = by_name.pop("kubernetes.core")
    tested = json.loads((collection_env.find_kubernetes_namespace() / "core" / "MANIFEST.json").read_text())["collection_info"]["version"]
    assert kubernetes["version"] == f"=={tested}", "the kubernetes.core the tests run against"
    minimum = META["dependencies"]["kubernetes.core"].removeprefix(">=")
    assert tuple(map(int, tested.split("."))) >= tuple(map(int, minimum.split(".")))
    (ours,) = by_name.values()
    assert ours == {"name": f"/build/collections/{TARBALL}", "type": "file"}

    galaxy_stage = stages["galaxy"]
    assert galaxy_stage.index("COPY _build /build") < galaxy_stage.index("WORKDIR /build")
    assert any(line.startswith("RUN ANSIBLE_GALAXY_DISABLE_GPG_VERIFY=1 ansible-galaxy collection install")
               and "-r requirements.yml" in line for line in galaxy_stage)
    assert "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in stages["final"]

    with tarfile.open(context / "_build" / "collections" / TARBALL) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
        names = tar.getnames()
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == (META["namespace"], META["name"], META["version"])
    for shipped in ("requirements.txt", "meta/execution-environment.yml", "playbooks/upgrade.yml",
                    "playbooks/controller_setup.yml", "extensions/controller/project/upgrade.yml"):
        assert shipped in names, f"{shipped} not in the collection tarball"
    for not_shipped in ("execution-environment.yml", "bindep.txt", "hack/ee-context"):
        assert not_shipped not in names


def _helm_step(stages):
    final = stages["final"]
    args = dict(re.fullmatch(r"ARG (HELM_\w+)=(\S+)", line).groups() for line in final if line.startswith("ARG HELM_"))
    (index,) = [i for i, line in enumerate(final) if line.startswith("RUN ") and "get.helm.sh" in line]
    return args, final[index][len("RUN "):], index


def test_helm_is_the_pinned_version_and_checked_before_use(stages):
    args, command, index = _helm_step(stages)
    assert args["HELM_VERSION"] == versions.HELM
    for arch in ("AMD64", "ARM64"):
        assert re.fullmatch(r"[0-9a-f]{64}", args[f"HELM_SHA256_{arch}"])
    steps = [step.strip() for step in command.split(";")]
    order = [next(i for i, s in enumerate(steps) if s.startswith(prefix))
             for prefix in ("curl ", 'echo "${sum}  $d/helm.tar.gz" | sha256sum --check', "tar ", "install ")]
    assert order == sorted(order), f"download, check, unpack, install: {steps}"
    final = stages["final"]
    assert index > final.index("RUN /output/scripts/install-from-bindep && rm -rf /output/wheels")
    assert index < next(i for i, line in enumerate(final) if line.startswith("USER "))


@pytest.fixture
def fake_download(tmp_path):
    """A bin directory with a curl that serves a tiny helm archive, and that archive's sha256."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    helm = f"#!/bin/sh\necho v{versions.HELM}+gfake\n".encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for arch in ("amd64", "arm64"):
            info = tarfile.TarInfo(f"linux-{arch}/helm")
            info.size, info.mode = len(helm), 0o755
            tar.addfile(info, io.BytesIO(helm))
    (tmp_path / "served.tar.gz").write_bytes(archive.getvalue())
    (fake_bin / "curl").write_text(
        f'#!/bin/sh\necho "$@" >> {tmp_path}/curl.log\n'
        'while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift;; esac; shift; done\n'
        f'cp {tmp_path}/served.tar.gz "$out"\n')
    (fake_bin / "curl").chmod(0o755)
    return fake_bin, hashlib.sha256(archive.getvalue()).hexdigest()


def run_helm_step(stages, tmp_path, fake_bin, machine="x86_64", **overrides):
    args, command, _ = _helm_step(stages)
    # the step unpacks in a mktemp directory (TMPDIR) and installs to /usr/local/bin; here both are
    # below tmp_path
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    assert command.count("/usr/local/bin/helm") == 1
    command = command.replace("/usr/local/bin/helm", f"{fake_bin}/helm")
    (fake_bin / "uname").write_text(f"#!/bin/sh\necho {machine}\n")
    (fake_bin / "uname").chmod(0o755)
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "TMPDIR": str(work), **args, **overrides}
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, env=env, timeout=60)


def test_helm_step_installs_an_archive_whose_sha256_matches(stages, tmp_path, fake_download):
    fake_bin, digest = fake_download
    proc = run_helm_step(stages, tmp_path, fake_bin, HELM_SHA256_AMD64=digest)
    assert proc.returncode == 0, proc.stderr
    assert (fake_bin / "helm").is_file()
    assert not list((tmp_path / "work").iterdir()), "the download is removed"
    assert f"https://get.helm.sh/helm-v{versions.HELM}-linux-amd64.tar.gz" in (tmp_path / "curl.log").read_text()


@pytest.mark.parametrize("machine, overrides, message", [
    ("x86_64", {}, "FAILED"),                             # the published checksum of the real archive
    ("aarch64", {}, "FAILED"),
    ("x86_64", {"HELM_SHA256_AMD64": ""}, None),          # no checksum: stops before the download
    ("s390x", {}, "no helm checksum for s390x"),          # an architecture without a checksum
])
def test_helm_step_refuses_an_archive_it_cannot_verify(stages, tmp_path, fake_download, machine, overrides, message):
    fake_bin, _ = fake_download
    proc = run_helm_step(stages, tmp_path, fake_bin, machine=machine, **overrides)
    assert proc.returncode != 0
    assert not (fake_bin / "helm").exists(), "helm installed although its checksum did not match"
    if message:
        assert message in proc.stdout + proc.stderr
    else:
        assert not (tmp_path / "curl.log").exists()


def test_the_definition_names_this_collection_version():
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    assert ee["additional_build_files"] == [{"src": "build/ee/dist/meshfleet-istio-*.tar.gz", "dest": "collections"}]
    assert ee["options"]["tags"] == [f"meshfleet-ee:{META['version']}"]
    dev = pins(REPO / "requirements-dev.txt")
    assert ee["dependencies"]["ansible_core"]["package_pip"] == f"ansible-core=={dev['ansible-core']}"
    assert ee["dependencies"]["ansible_runner"]["package_pip"] == f"ansible-runner=={dev['ansible-runner']}"
    assert shutil.which("ansible-builder", path=str(BIN)), "ansible-builder comes from requirements-dev.txt"
    assert os.access(REPO / "hack" / "ee-context", os.X_OK)
