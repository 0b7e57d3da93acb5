"""Progress lines for long work: one line per step, with the time it has taken."""

import sys
import time


class FleetError(Exception):
    """A failure the user can act on; printed as one line without a traceback."""


def say(message: str) -> None:
    print(f"[localfleet] {message}", file=sys.stderr, flush=True)


class Step:
    """Context manager that announces a step and reports how long it took."""

    def __init__(self, title: str):
        self.title = title
        self.started = 0.0

    def __enter__(self):
        self.started = time.monotonic()
        say(f"{self.title} ...")
        return self

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}m{seconds % 60:02d}s"

    def update(self, detail: str) -> None:
        say(f"{self.title}: {detail} ({self.elapsed()})")

    def __exit__(self, exc_type, exc, tb):
        outcome = "done" if exc_type is None else "failed"
        say(f"{self.title}: {outcome} in {self.elapsed()}")
        return False
