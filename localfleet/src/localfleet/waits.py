"""Waiting on a live cluster in tests: one way, with the last value seen in the failure."""

import time


def wait_until(probe, what="condition", timeout=120, interval=0.3):
    """`probe()`'s first truthy value, asked every `interval` seconds; an AssertionError that
    names `what` and the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
