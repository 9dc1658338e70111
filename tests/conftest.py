"""Session fixtures, test marks and the suite's timing report.

- The native stack (3 workers) starts once per session and is shared; every test that uses it is
  marked `stack`, so that `make test` (tests/run.py) runs them in one process of their own, in
  file order, beside the others.
- Tests that load the machine (marked `heavy`) never overlap, and tests that stop a server every
  stack shares (marked `exclusive`) run first and alone, across the pytest processes of a run
  (tests/locks.py).
- Each run writes its slowest 20 tests to .native/test-durations-<TEST_RUN_NAME>.txt.

The stack runs the alerting profile "fast" (native/derive.py): the real rules with shorter `for:`,
windows and offsets, so that live alert tests take seconds, not hours.
"""

import contextlib
import os

import pytest

from native import broker as native_broker, dotenv, env as native_env, paths, process
from tests import locks
from tests.live import STACK_WORKERS, forget_earlier_stacks, native_cli

# Tests talk to the broker and Redis as the stack does (RMQ_URL with the .env user).
dotenv.ensure(lambda message: None)
_env = native_env.build()
for _name in ("RMQ_URL", "REDIS_URL"):
    os.environ[_name] = _env[_name]

SLOWEST = 20
_DURATIONS = {}  # nodeid -> seconds (setup + call + teardown)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)
    # Exclusive tests first: the other processes of the run have barely begun, so they wait least.
    items.sort(key=lambda item: item.get_closest_marker("exclusive") is None)


_EXCLUSIVE_LEFT = []  # this process's exclusive tests not run yet (node ids)


def pytest_collection_finish(session):
    # After `-m` and `-k` chose: the exclusive tests this process will run.
    _EXCLUSIVE_LEFT[:] = [item.nodeid for item in session.items if item.get_closest_marker("exclusive")]
    locks.collected(bool(_EXCLUSIVE_LEFT), os.environ.get("TEST_RUN_NAME"))


@pytest.fixture(autouse=True)
def _locks(request):
    exclusive = request.node.get_closest_marker("exclusive") is not None
    heavy = request.node.get_closest_marker("heavy") is not None
    assert not (exclusive and heavy), "an exclusive test runs alone: it needs no heavy lock"
    if not exclusive and not locks.wait_for_exclusive_tests():
        print("gave up waiting for the other processes' exclusive tests")
    try:
        with locks.shared_servers(exclusive), locks.heavy() if heavy else contextlib.nullcontext():
            yield
    finally:
        if request.node.nodeid in _EXCLUSIVE_LEFT:
            _EXCLUSIVE_LEFT.remove(request.node.nodeid)
            if not _EXCLUSIVE_LEFT:
                locks.exclusive_done()


@pytest.fixture(scope="session")
def rabbitmq():
    """RabbitMQ with the bundle's user, as `make up` leaves it, without the rest of the stack. It
    waits for the broker rather than starting one: beside these tests, the stack's tests restart the
    machine's broker, and a broker started meanwhile would be taken for native mode's own."""
    broker = native_env.broker_parts(_env["RMQ_URL"])
    if not native_broker.wait_listening(broker["host"], broker["port"], 120):
        pytest.fail(f"no RabbitMQ listening on {broker['host']}:{broker['port']} (make up starts one)")
    native_broker.ensure_user(broker, lambda message: None)


@pytest.fixture(scope="session")
def stack():
    """The running native stack with 3 workers; stopped at the end if this session started it."""
    was_running = bool(process.owned())
    if not was_running:
        forget_earlier_stacks()
    with locks.shared_servers():
        result = native_cli("up", "--workers", str(STACK_WORKERS))
    print(result.stdout)
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
    yield result.stdout
    if not was_running:
        with locks.shared_servers():
            native_cli("down", timeout=180)


def pytest_runtest_logreport(report):
    # Runs on the controller for every xdist worker's reports too.
    _DURATIONS[report.nodeid] = _DURATIONS.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    locks.exclusive_done()  # also when an exclusive test was skipped or the run was cut short
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller writes the report
    if not _DURATIONS:
        return
    name = os.environ.get("TEST_RUN_NAME") or paths.INSTANCE or "all"
    out = paths.REPO / ".native" / f"test-durations-{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    slowest = sorted(_DURATIONS.items(), key=lambda item: -item[1])[:SLOWEST]
    out.write_text("".join(f"{seconds:8.1f}s  {nodeid}\n" for nodeid, seconds in slowest))
