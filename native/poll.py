"""Waiting for a condition: one polling loop for the CLI, the screenshots script and the tests."""

import time


class TimedOut(Exception):
    """The condition did not hold within the timeout."""


def until(predicate, timeout, interval=0.5, message="condition"):
    """Call predicate() every `interval` seconds until it returns a truthy value, and return that
    value; after `timeout` seconds raise TimedOut naming `message` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimedOut(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")
