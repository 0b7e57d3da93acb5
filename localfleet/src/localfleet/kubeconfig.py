"""Kubeconfig files with embedded certificates, one context per cluster and identity."""

import base64
import json
from pathlib import Path


def _b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def entry(context, server, ca, cert, key, user) -> dict:
    return {
        "cluster": {"name": context, "cluster": {"server": server,
                                                 "certificate-authority-data": _b64(ca)}},
        "user": {"name": user, "user": {"client-certificate-data": _b64(cert),
                                        "client-key-data": _b64(key)}},
        "context": {"name": context, "context": {"cluster": context, "user": user}},
    }


def write(path: Path, entries: list) -> None:
    """Write a kubeconfig (JSON is valid YAML) whose current context is the first entry's."""
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [e["cluster"] for e in entries],
        "users": [e["user"] for e in entries],
        "contexts": [e["context"] for e in entries],
        "current-context": entries[0]["context"]["name"] if entries else "",
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
