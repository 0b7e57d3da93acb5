"""Istio's real Helm charts, taken from the istio.io/istio module and packaged the way a
release build packages them: chart version and appVersion set to the Istio version, and the
image hub and tag set in place of the source tree's development defaults."""

import json
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from . import gobuild, paths, release_trees, versions
from .progress import FleetError, Step

# chart name -> directory below manifests/charts in the Istio source tree
CHART_DIRS = {
    "base": "base",
    "istiod": "istio-control/istio-discovery",
    "gateway": "gateway",
    "cni": "istio-cni",
}
# The chart of a release of the IstioOperator engine (Istio 1.22, 1.23) that the fleet packages:
# the operator's own (its istiod and gateways are rendered by the operator from its binary).
OPERATOR_CHART_DIRS = {"istio-operator": "istio-operator"}
# The source trees' development image defaults, by era.
DEV_HUBS = ("registry.istio.io/testing", "gcr.io/istio-testing")


def chart_dir(version: str) -> Path:
    return paths.charts_cache() / version


def istio_module_dir(pseudo_version: str) -> Path:
    go = gobuild.find_go()
    env = gobuild.go_env(go)
    out = gobuild.run([go, "mod", "download", "-json", f"istio.io/istio@{pseudo_version}"],
                      env=env, cwd=gobuild._scratch_dir(),
                      what=f"downloading istio.io/istio@{pseudo_version}")
    info = json.loads(out)
    if info.get("Error"):
        raise FleetError(f"module proxy: {info['Error']}")
    return Path(info["Dir"])


def release_tree_charts(archive: str, work: Path) -> Path:
    """Unpack manifests/charts of a shared release tree archive, after checking its SHA256SUMS
    entry; returns the unpacked manifests/charts directory."""
    with tarfile.open(release_trees.checked_archive(archive)) as tar:
        root = release_trees.archive_root(tar)
        wanted = [m for m in tar.getmembers()
                  if m.name.startswith(f"{root}/manifests/charts/") and (m.isfile() or m.isdir())]
        tar.extractall(work, members=wanted, filter="data")
    return work / root / "manifests" / "charts"


def set_release_images(values_text: str, hub: str, tag: str) -> str:
    """Replace the development hub/tag defaults (`hub: <dev hub>`, `tag: latest`)."""
    dev_hubs = "|".join(re.escape(dev) for dev in DEV_HUBS)
    values_text = re.sub(rf"^([ \t]*hub:[ \t]*)(?:{dev_hubs})[ \t]*$", rf"\g<1>{hub}",
                         values_text, flags=re.M)
    return re.sub(r"^([ \t]*tag:[ \t]*)latest[ \t]*$", rf"\g<1>{tag}", values_text, flags=re.M)


def package(version: str, helm: Path) -> Path:
    """Package the charts of `version` into the cache (the four Helm charts of a release, or
    the operator chart of a release of the IstioOperator engine); returns their directory."""
    out = chart_dir(version)
    if (out / ".complete").exists():
        return out
    source, hub, kind = gobuild.istio_build_source(version)
    chart_dirs = (OPERATOR_CHART_DIRS if version in versions.ISTIO_OPERATOR_BUILDS
                  else CHART_DIRS)
    with Step(f"packaging Istio {version} charts ({kind} {source[-20:]})"), \
            tempfile.TemporaryDirectory() as work:
        if kind == "release tree":
            charts = release_tree_charts(source, Path(work) / "tree")
        else:
            charts = istio_module_dir(source) / "manifests" / "charts"
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, rel in chart_dirs.items():
            chart = Path(work) / name
            shutil.copytree(charts / rel, chart)
            values = chart / "values.yaml"
            values.write_text(set_release_images(values.read_text(), hub, version))
            gobuild.run([str(helm), "package", "--version", version, "--app-version",
                         version, "-d", str(tmp), str(chart)], what=f"helm package {name}")
        gobuild.run([str(helm), "repo", "index", str(tmp)], what="helm repo index")
        (tmp / ".complete").write_text(json.dumps({"source": source, "hub": hub}))
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


def package_all(helm: Path) -> dict:
    """Package every pinned build, and link all charts into one directory (`all/`), the
    layout of a `directory` chart source."""
    packaged = {version: package(version, helm)
                for version in (*versions.ISTIO_BUILDS, *versions.ISTIO_OPERATOR_BUILDS)}
    flat = paths.charts_cache() / "all"
    flat.mkdir(parents=True, exist_ok=True)
    for directory in packaged.values():
        for chart in directory.glob("*.tgz"):
            link = flat / chart.name
            if not link.exists():
                link.symlink_to(chart)
    return packaged

