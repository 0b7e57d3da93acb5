"""Write requests in a cluster's audit log (kube-apiserver --audit-log-path: JSON lines,
Metadata level, written before the response is sent, so a write is in the log once its client
has the answer).

A marker is a byte offset into the log: take one with `mark()` before a step and pass it as
`since` to count only the writes made after it. A dry run is not a write: the audit event shows
it only in its requestURI (`?dryRun=All`), so that is what is checked.
"""

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})


def mark(path: Path) -> int:
    """The current end of the log."""
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        return 0


def events(path: Path, since: int = 0):
    """Audit events whose line starts at or after byte offset `since` (complete lines only)."""
    try:
        log = open(path, "rb")
    except FileNotFoundError:
        return
    with log:
        log.seek(since)
        for line in log:
            if not line.endswith(b"\n"):
                return
            try:
                yield json.loads(line)
            except ValueError:
                continue  # the tail of a line that began before `since`


def is_dry_run(event: dict) -> bool:
    return bool(parse_qs(urlsplit(event.get("requestURI", "")).query).get("dryRun"))


def acting_user(event: dict) -> str:
    """The user a request acted as: the impersonated one if any, else the authenticated one."""
    return (event.get("impersonatedUser") or event.get("user") or {}).get("username", "")


def is_write(event: dict) -> bool:
    return (event.get("stage") in FINAL_STAGES and event.get("verb") in WRITE_VERBS
            and not is_dry_run(event))


def writes(path: Path, since: int = 0, user: str = None) -> list:
    """Write requests (not dry runs) logged after `since`, optionally only those of `user`."""
    return [e for e in events(path, since)
            if is_write(e) and (user is None or acting_user(e) == user)]


def count_writes(path: Path, since: int = 0, user: str = None) -> int:
    return len(writes(path, since, user))


def describe(event: dict) -> str:
    """One line per write: verb, resource, namespace/name, acting user and response code."""
    ref = event.get("objectRef") or {}
    resource = "/".join(p for p in (ref.get("resource"), ref.get("subresource")) if p)
    target = "/".join(p for p in (ref.get("namespace"), ref.get("name")) if p)
    code = (event.get("responseStatus") or {}).get("code", "")
    return f"{event.get('verb')} {resource} {target} as {acting_user(event)}: {code}"
