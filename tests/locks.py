"""Locks the pytest processes of `make test` (tests/run.py) share, as files under .native/.

- heavy: tests that load the machine (marked `heavy`) never overlap, so that a measurement near
  capacity is not starved by another.
- exclusive first: a process with exclusive tests runs them first, and the others start no test
  until every process of the run has collected its tests and those exclusive tests are done
  (expect_processes, collected, exclusive_done, wait_for_exclusive_tests).
- shared servers: every native stack of the run uses the machine's RabbitMQ and the results Redis.
  A test that stops one of them (marked `exclusive`) runs alone: it waits until the tests running in
  the other processes end and holds back new ones (and stack starts) until it is done. Other tests
  hold the lock shared. A turnstile gives the exclusive test its turn: without it, the processes'
  shared holds could overlap forever. Within one process the lock is reentrant: a stack restarted
  inside a test that holds it does not queue behind an exclusive test that waits for that very test.
"""

import contextlib
import fcntl
import os
import shutil
import time

from native import paths, process

LOCKS = paths.REPO / ".native"
# One file per pytest process that still has exclusive tests to run: the other processes start no
# test until there is none (an exclusive test that waited behind a long test elsewhere would hold
# every process back through the turnstile meanwhile).
EXCLUSIVE_FIRST = LOCKS / "exclusive-first"
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


# How long a run's process may take to collect its tests before the others stop waiting for it.
COLLECTING_MAX_S = 120


def _token():
    return str(os.getpid())


def expect_processes(names):
    """Before a run starts its processes (tests/run.py): one file per process name, which that
    process removes once it has collected its tests (collected); until then the others wait."""
    shutil.rmtree(EXCLUSIVE_FIRST, ignore_errors=True)  # an earlier run cut short
    EXCLUSIVE_FIRST.mkdir(parents=True)
    for name in names:
        (EXCLUSIVE_FIRST / f"collecting-{name}").touch()


def collected(has_exclusive, name=None):
    """This process has collected its tests: it waits for the others' exclusive tests, or (with
    exclusive tests of its own) the others wait for it until exclusive_done()."""
    if has_exclusive:
        EXCLUSIVE_FIRST.mkdir(parents=True, exist_ok=True)
        (EXCLUSIVE_FIRST / _token()).touch()
    if name:
        (EXCLUSIVE_FIRST / f"collecting-{name}").unlink(missing_ok=True)


def exclusive_done():
    (EXCLUSIVE_FIRST / _token()).unlink(missing_ok=True)


def wait_for_exclusive_tests(timeout=1800, interval=0.5):
    """Until no other live process of the run has exclusive tests left; False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = False
        for path in EXCLUSIVE_FIRST.glob("*") if EXCLUSIVE_FIRST.is_dir() else ():
            if path.name == _token():
                continue
            if path.name.startswith("collecting-"):
                with contextlib.suppress(FileNotFoundError):
                    waiting |= time.time() - path.stat().st_mtime < COLLECTING_MAX_S
            elif path.name.isdigit() and process.alive(int(path.name)):
                waiting = True
            else:
                path.unlink(missing_ok=True)  # left by a process that is gone
        if not waiting:
            return True
        time.sleep(interval)
    return False
