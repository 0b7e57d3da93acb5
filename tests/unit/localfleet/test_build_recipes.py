"""Pure logic of the build and chart tooling (no cluster, no network)."""

from localfleet import charts, gobuild
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
