"""Pure logic of the build and chart tooling (no cluster, no network)."""

import hashlib
import tarfile

import pytest

from localfleet import charts, gobuild, release_trees, versions
from localfleet.progress import FleetError
from localfleet.cluster import MAX_CLUSTERS, ClusterSpec
from localfleet.fleet import component_port

GOMOD = """module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/other/mod => github.com/other/mod v1.2.3
)
"""


def test_local_replaces_are_the_staging_modules_only():
    assert gobuild.parse_local_replaces(GOMOD) == ["k8s.io/api", "k8s.io/client-go"]


def test_go_and_godebug_lines_are_copied():
    assert gobuild.parse_go_line(GOMOD) == "1.25.0"
    assert gobuild.parse_godebug(GOMOD) == ("default=go1.25",)


def test_required_version_is_read():
    assert gobuild.parse_require(GOMOD, "k8s.io/client-go") == "v0.0.0"


def test_binary_name_skips_a_major_version_suffix():
    assert gobuild.go_binary_name("go.etcd.io/etcd/server/v3") == "server"
    assert gobuild.go_binary_name("k8s.io/kubernetes/cmd/kubectl") == "kubectl"


def test_wrapper_module_replaces_every_staging_module(tmp_path):
    component = gobuild.Component(
        name="kubernetes", module="k8s.io/kubernetes", version="v1.35.4",
        packages=("k8s.io/kubernetes/cmd/kube-apiserver",),
        replaces=(("k8s.io/api", "v0.35.4"),), godebug=("default=go1.25",), go_line="1.25.0")
    gobuild.write_wrapper_module(component, tmp_path)
    text = (tmp_path / "go.mod").read_text()
    assert "require k8s.io/kubernetes v1.35.4" in text
    assert "\tk8s.io/api => k8s.io/api v0.35.4" in text
    assert "tool (\n\tk8s.io/kubernetes/cmd/kube-apiserver\n)" in text
    assert "godebug (\n\tdefault=go1.25\n)" in text


def test_release_images_replace_only_development_defaults():
    values = ("global:\n  hub: registry.istio.io/testing\n  tag: latest\n"
              "other:\n  hub: \"\"\n  tag: \"\"\n")
    out = charts.set_release_images(values, "registry.istio.io/release", "1.31.0")
    assert out == ("global:\n  hub: registry.istio.io/release\n  tag: 1.31.0\n"
                   "other:\n  hub: \"\"\n  tag: \"\"\n")


def test_clusters_never_share_a_port_or_a_cidr():
    specs = [ClusterSpec(f"c{i}", i) for i in range(MAX_CLUSTERS)]
    ports = [component_port(s, c) for s in specs
             for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                       "kwok")] + [s.etcd_peer_port for s in specs]
    assert len(ports) == len(set(ports))
    cidrs = [s.service_cidr for s in specs] + [s.pod_cidr for s in specs]
    assert len(cidrs) == len(set(cidrs))


def test_istioctl_and_pilot_discovery_of_a_release_are_one_build_with_its_version_stamped(
        monkeypatch):
    monkeypatch.setattr(gobuild, "module_gomod", lambda *_: "module istio.io/istio\n\ngo 1.26.0\n")
    component = gobuild.RECIPES[f"istio-{versions.ISTIO_DEFAULT}"]("go", {})
    pseudo, hub, _ = versions.ISTIO_BUILDS[versions.ISTIO_DEFAULT]
    assert (component.module, component.version) == ("istio.io/istio", pseudo)
    assert component.binary_names() == ("istioctl", "pilot-discovery")
    assert f"-X istio.io/istio/pkg/version.buildVersion={versions.ISTIO_DEFAULT}" in component.ldflags
    assert f"-X istio.io/istio/pkg/version.buildHub={hub}" in component.ldflags
    assert component.go_line == "1.26.0"
    assert component.local_replaces == ()


def test_a_release_tree_builds_with_the_trees_of_the_modules_the_proxy_refuses(
        tmp_path, monkeypatch):
    gomod = ("module istio.io/istio\n\ngo 1.25.9\n\nrequire (\n"
             "\tgithub.com/agentgateway/agentgateway/api v0.0.0-20260506232448-6ae4ab07bb06\n"
             "\tistio.io/api v1.30.3-0.20260710004328-2e43f07b30b6\n"
             "\tistio.io/client-go v1.99.0 // indirect\n)\n")
    available = ["agentgateway-api-v0.0.0-20260506232448-6ae4ab07bb06.tar.gz",
                 "api-v1.30.3-0.20260710004328-2e43f07b30b6.tar.gz",
                 "client-go-v1.30.3-0.20260710004929-5146bfac9969.tar.gz"]
    assert release_trees.local_replacements(gomod, available) == (
        ("istio.io/api", "api-v1.30.3-0.20260710004328-2e43f07b30b6.tar.gz"),
        ("github.com/agentgateway/agentgateway/api",
         "agentgateway-api-v0.0.0-20260506232448-6ae4ab07bb06.tar.gz"))
    tree = tmp_path / "istio-1.30.3"
    tree.mkdir()
    (tree / "go.mod").write_text(gomod)
    monkeypatch.setattr(release_trees, "local_replacements",
                        lambda _gomod: (("istio.io/api", "api-x.tar.gz"),))
    monkeypatch.setattr(release_trees, "source_commit", lambda _name: "56df41f6")
    monkeypatch.setattr(release_trees, "unpack",
                        lambda name: tree if name.startswith("istio-") else tmp_path / name)
    component = gobuild.RECIPES["istio-1.30.3"]("go", {})
    assert component.version == "v1.30.3"
    assert component.local_replaces == (("istio.io/istio", str(tree)),
                                        ("istio.io/api", str(tmp_path / "api-x.tar.gz")))
    assert "-X istio.io/istio/pkg/version.buildGitRevision=56df41f6" in component.ldflags
    workdir = tmp_path / "wrapper"
    gobuild.write_wrapper_module(component, workdir)
    text = (workdir / "go.mod").read_text()
    assert f"\tistio.io/istio => {tree}\n" in text and "require istio.io/istio v1.30.3" in text


def release_tree(tmp_path, name="istio-9.9.9.tar.gz"):
    src = tmp_path / "src" / "istio-9.9.9"
    (src / "manifests" / "charts" / "base").mkdir(parents=True)
    (src / "manifests" / "charts" / "base" / "Chart.yaml").write_text("name: base\n")
    (src / "pilot").mkdir()
    (src / "pilot" / "main.go").write_text("package main\n")
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    with tarfile.open(upstream / name, "w:gz") as tar:
        tar.add(src, arcname="istio-9.9.9")
    digest = hashlib.sha256((upstream / name).read_bytes()).hexdigest()
    (upstream / "SHA256SUMS").write_text(f"{digest}  {name}\n")
    return upstream


def test_a_release_tree_unpacks_only_its_charts_after_its_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHFLEET_UPSTREAM_ISTIO", str(release_tree(tmp_path)))
    found = charts.release_tree_charts("istio-9.9.9.tar.gz", tmp_path / "work")
    assert (found / "base" / "Chart.yaml").read_text() == "name: base\n"
    assert not (tmp_path / "work" / "istio-9.9.9" / "pilot").exists()


def test_a_release_tree_unpacks_whole_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHFLEET_UPSTREAM_ISTIO", str(release_tree(tmp_path)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = release_trees.unpack("istio-9.9.9.tar.gz")
    assert (tree / "pilot" / "main.go").exists() and tree.name == "istio-9.9.9"
    (tree / "pilot" / "main.go").write_text("changed")
    assert release_trees.unpack("istio-9.9.9.tar.gz") == tree
    assert (tree / "pilot" / "main.go").read_text() == "changed"


def test_a_release_tree_that_differs_from_its_checksum_is_refused(tmp_path, monkeypatch):
    upstream = release_tree(tmp_path)
    (upstream / "SHA256SUMS").write_text("0" * 64 + "  istio-9.9.9.tar.gz\n")
    monkeypatch.setenv("MESHFLEET_UPSTREAM_ISTIO", str(upstream))
    with pytest.raises(FleetError, match="differs from SHA256SUMS"):
        charts.release_tree_charts("istio-9.9.9.tar.gz", tmp_path / "work")


def test_a_missing_release_tree_names_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHFLEET_UPSTREAM_ISTIO", str(tmp_path))
    with pytest.raises(FleetError, match="MESHFLEET_UPSTREAM_ISTIO"):
        charts.release_tree_charts("istio-9.9.9.tar.gz", tmp_path / "work")


def test_older_kubernetes_and_operator_releases_are_built_only_on_request():
    assert "kubernetes" in gobuild.DEFAULT_BUILD
    for release in versions.KUBERNETES_OLDER:
        assert f"kubernetes-{release}" in gobuild.RECIPES
        assert f"kubernetes-{release}" not in gobuild.DEFAULT_BUILD
    for release in versions.ISTIO_OPERATOR_BUILDS:
        assert f"istio-{release}" in gobuild.RECIPES
        assert f"istio-{release}" not in gobuild.DEFAULT_BUILD


def test_an_older_kubernetes_is_stamped_with_its_own_version(monkeypatch):
    monkeypatch.setattr(gobuild, "module_gomod", lambda *_: GOMOD)
    component = gobuild.RECIPES["kubernetes-1.30.3"]("go", {})
    assert (component.name, component.version) == ("kubernetes-1.30.3", "v1.30.3")
    assert "-X k8s.io/component-base/version.gitMinor=30" in component.ldflags
    assert component.replaces == (("k8s.io/api", "v0.30.3"), ("k8s.io/client-go", "v0.30.3"))
    default = gobuild.RECIPES["kubernetes"]("go", {})
    assert (default.name, default.version) == ("kubernetes", f"v{versions.KUBERNETES}")


def test_an_operator_release_builds_its_in_cluster_operator(
        tmp_path, monkeypatch):
    tree = tmp_path / "istio-1.23.6"
    tree.mkdir()
    (tree / "go.mod").write_text("module istio.io/istio\n\ngo 1.22.0\n\nreplace "
                                 "github.com/imdario/mergo => github.com/imdario/mergo v0.3.5\n")
    monkeypatch.setattr(release_trees, "unpack", lambda name: tree)
    monkeypatch.setattr(release_trees, "source_commit", lambda _name: "6a112a28")
    component = gobuild.RECIPES["istio-1.23.6"]("go", {})
    assert component.binary_names() == ("operator",)
    # The tree's own replace directive, which Go applies only in the main module.
    assert component.replaces == (("github.com/imdario/mergo", "v0.3.5"),)
    assert "-X istio.io/istio/pkg/version.buildVersion=1.23.6" in component.ldflags


def test_a_fleet_on_an_older_kubernetes_runs_its_binaries_beside_the_shared_ones(
        tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FleetError, match="build kubernetes-1.30.3"):
        gobuild.fleet_bin_dir("1.30.3")
    with pytest.raises(FleetError, match="choose from"):
        gobuild.fleet_bin_dir("1.29.0")
    assert gobuild.fleet_bin_dir(None) == gobuild.fleet_bin_dir(versions.KUBERNETES) \
        == gobuild.binaries_dir()
    shared, older = tmp_path / "built-default", tmp_path / "built-1.30.3"
    for directory, names in ((shared, ("etcd", "kwok", "helm") + gobuild.KUBERNETES_BINARIES),
                             (older, gobuild.KUBERNETES_BINARIES)):
        directory.mkdir()
        for name in names:
            (directory / name).write_text(f"{directory.name}/{name}")
    gobuild.link_binaries({"etcd": shared, "kubernetes-1.30.3": older})
    target = gobuild.fleet_bin_dir("1.30.3")
    assert (target / "kube-apiserver").resolve() == older / "kube-apiserver"
    assert (target / "kubectl").resolve() == older / "kubectl"
    assert (target / "etcd").resolve() == shared / "etcd"
    assert (gobuild.binaries_dir() / "kube-apiserver").resolve() == shared / "kube-apiserver"


def test_the_operator_charts_development_image_is_replaced_by_the_release():
    values = "defaults:\n  hub: gcr.io/istio-testing\n  tag: latest\n"
    assert charts.set_release_images(values, "docker.io/istio", "1.22.8") == (
        "defaults:\n  hub: docker.io/istio\n  tag: 1.22.8\n")
