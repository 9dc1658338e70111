"""Locks the pytest processes of `make test` (tests/run.py) share, as files under .native/.

- heavy: tests that load the machine (marked `heavy`) never overlap, so that a measurement near
  capacity is not starved by another.
- shared servers: every native stack of the run uses the machine's RabbitMQ and the results Redis.
  A test that stops one of them (marked `exclusive`) runs alone: it waits until the tests running in
  the other processes end and holds back new ones (and stack starts) until it is done. Other tests
  hold the lock shared. A turnstile gives the exclusive test its turn: without it, the processes'
  shared holds could overlap forever. Within one process the lock is reentrant: a stack restarted
  inside a test that holds it does not queue behind an exclusive test that waits for that very test.
"""

import contextlib
import fcntl

from native import paths

LOCKS = paths.REPO / ".native"
_depth = 0  # shared_servers() held by this process, nested


@contextlib.contextmanager
def _flock(name, mode, directory=None):
    directory = directory or LOCKS
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / name).open("a") as f:
        fcntl.flock(f, mode)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def heavy():
    return _flock("heavy-tests.lock", fcntl.LOCK_EX)


@contextlib.contextmanager
def shared_servers(exclusive=False, directory=None):
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    _depth = 1
    try:
        with _locked(exclusive, directory):
            yield
    finally:
        _depth = 0


@contextlib.contextmanager
def _locked(exclusive, directory):
    turnstile, lock = "shared-servers.turnstile", "shared-servers.lock"
    if exclusive:
        with _flock(turnstile, fcntl.LOCK_EX, directory), _flock(lock, fcntl.LOCK_EX, directory):
            yield
        return
    with contextlib.ExitStack() as held:
        with _flock(turnstile, fcntl.LOCK_EX, directory):  # only to pass through it
            held.enter_context(_flock(lock, fcntl.LOCK_SH, directory))
        yield
