"""Reading a Helm release from the Secrets helm stores it in (pure decoding; the comparison with
the real helm's output is in tests/playbooks/test_kube_api.py)."""

import base64
import gzip
import json

from ansible_collections.meshfleet.istio.plugins.module_utils.helm_record import (
    metadata,
    newest,
)


def stored(revision, status, config):
    release = {"name": "istiod-1-31-0", "namespace": "istio-system", "version": revision,
               "info": {"status": status, "last_deployed": "2026-12-01T23:13:54.809290857Z"},
               "chart": {"metadata": {"name": "istiod", "version": "1.31.0",
                                      "appVersion": "1.31.0"}},
               "config": config, "manifest": "---\n"}
    helm_encoded = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {"metadata": {"labels": {"owner": "helm", "version": str(revision)}},
            "data": {"release": base64.b64encode(helm_encoded).decode()}}


def test_the_newest_revision_is_the_one_helm_shows_whatever_the_list_order():
    secrets = [stored(10, "deployed", {"a": 10}), stored(9, "superseded", {"a": 9}),
               stored(2, "superseded", {"a": 2})]
    assert newest(secrets)["config"] == {"a": 10}
    assert newest([]) is None


def test_metadata_has_helm_get_metadata_s_fields_and_second_precision():
    assert metadata(newest([stored(3, "pending-upgrade", {})])) == {
        "name": "istiod-1-31-0", "chart": "istiod", "version": "1.31.0",
        "appVersion": "1.31.0", "namespace": "istio-system", "revision": 3,
        "status": "pending-upgrade", "deployedAt": "2026-12-01T23:13:54Z"}
