# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""A Helm release read as Helm stores it, without starting helm.

With Helm's default storage driver (`secrets`) each revision of a release is a Secret
`sh.helm.release.v1.<release>.v<revision>` labelled `owner=helm,name=<release>`; its `release`
field is the release as JSON, gzipped and base64-encoded by Helm, then base64-encoded again as
Secret data. The newest revision is the one `helm get` shows: its chart, the values it was given
(`config`), its manifest and its status.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import tarfile

try:
    import yaml
except ImportError:  # the module's requirement check reports it
    yaml = None

SECRET_DRIVERS = ("", "secret", "secrets")


def stored_in_secrets():
    """Whether helm keeps releases in Secrets here (HELM_DRIVER unset or `secret(s)`)."""
    return os.environ.get("HELM_DRIVER", "").lower() in SECRET_DRIVERS


def decode(secret):
    """The release JSON a revision's Secret holds."""
    packed = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    if packed[:2] == b"\x1f\x8b":
        packed = gzip.decompress(packed)
    return json.loads(packed)


def revision_of(secret):
    try:
        return int((secret["metadata"].get("labels") or {}).get("version", "0"))
    except ValueError:
        return 0


def newest(secrets):
    """The release of the newest revision among a release's Secrets, or None."""
    if not secrets:
        return None
    return decode(max(secrets, key=revision_of))


def read_release(api, name, namespace):
    """The newest revision of release `name` in `namespace`, or None (one LIST, as helm does)."""
    listing = api.list("v1", "Secret", namespace, label_selector="owner=helm,name=%s" % name)
    return newest([secret for secret in listing.get("items") or []
                   if secret.get("type") == "helm.sh/release.v1"])


def _deployed_at(stamp):
    """RFC 3339 without the fraction of a second, as `helm get metadata` prints it."""
    return re.sub(r"\.\d+", "", stamp or "")


def metadata(release):
    """What `helm get metadata -o json` prints for the release."""
    chart = (release.get("chart") or {}).get("metadata") or {}
    info = release.get("info") or {}
    return {"name": release.get("name"), "chart": chart.get("name"),
            "version": chart.get("version"), "appVersion": chart.get("appVersion"),
            "namespace": release.get("namespace"), "revision": release.get("version"),
            "status": info.get("status"), "deployedAt": _deployed_at(info.get("last_deployed"))}


def values(release):
    """What `helm get values -o json` prints: the values the revision was given."""
    return release.get("config") or {}


def local_chart_version(ref):
    """The version in a chart's Chart.yaml when `ref` is a chart directory or a packaged
    chart (.tgz) on this host, else None."""
    if os.path.isdir(ref):
        with open(os.path.join(ref, "Chart.yaml")) as handle:
            return str(yaml.safe_load(handle)["version"])
    if os.path.isfile(ref) and tarfile.is_tarfile(ref):
        with tarfile.open(ref) as archive:
            for member in archive:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml":
                    return str(yaml.safe_load(archive.extractfile(member))["version"])
    return None
