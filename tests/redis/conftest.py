"""The Redis-broker stack: one native stack with BROKER=redis and 3 workers, shared by tests/redis.

`make test` runs tests/redis in a pytest process of its own, beside the RabbitMQ-stack suite, on a
second native stack (NATIVE_INSTANCE, NATIVE_PORT_OFFSET: its own state directory and ports; its
own Redis serves as broker and, on another database, as result backend). Run within the main
session instead (plain `pytest tests`), its tests come last: the session's RabbitMQ stack is
stopped once, the Redis one started once on the same ports.
The stack runs the fast alerting profile, and a short visibility timeout (with tasks capped below it)
so that redelivery after a SIGKILL takes seconds, not the default 11 minutes.
"""

import os
import subprocess
import sys
import time

import pytest

from native import env as native_env, paths
from native.ports import BASE_PORTS, OFFSET
from tests import locks
from tests.live import STACK_ENV, STACK_WORKERS, forget_earlier_stacks

VISIBILITY_TIMEOUT = 30
# A stack of its own beside the session's RabbitMQ stack (make test), or in its place.
SIDE_BY_SIDE = bool(paths.INSTANCE)
REDIS_STACK_ENV = {
    **STACK_ENV,
    "BROKER": "redis",
    "VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    "MAX_TIMEOUT_SECONDS": "20",
}
if SIDE_BY_SIDE:
    # Results on a Redis of its own (native mode starts one where none listens): the RabbitMQ
    # stack's tests stop the system Redis meanwhile.
    REDIS_STACK_ENV["REDIS_URL"] = f"redis://127.0.0.1:{BASE_PORTS['redis'] + OFFSET}/0"


def redis_stack_env():
    env = {k: v for k, v in os.environ.items() if k not in ("BROKER_URL", "RMQ_URL")}
    return {**env, **REDIS_STACK_ENV}


def redis_cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "native", *args], capture_output=True, text=True, timeout=timeout, env=redis_stack_env()
    )


def redis_broker_url():
    """The broker URL of the Redis-broker stack, derived as `python -m native` derives it from
    redis_cli's environment (this process's own BROKER_URL, and so worker.celery_app, may name RabbitMQ)."""
    env = {**native_env.DEFAULTS, **native_env.read_dotenv(paths.REPO / ".env"), **redis_stack_env()}
    native_env.select_broker(env)
    return env["BROKER_URL"]


def redis_up(workers=STACK_WORKERS):
    with locks.shared_servers():  # it reuses the results Redis: never while a test has it stopped
        result = redis_cli("up", "--workers", str(workers))
    assert result.returncode == 0, f"BROKER=redis make up failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def pytest_collection_modifyitems(session, config, items):
    here = os.path.dirname(__file__)
    ours = [i for i in items if str(i.fspath).startswith(here)]
    items[:] = [i for i in items if i not in ours] + ours


def native_down():
    with locks.shared_servers():
        _native_down()


def _native_down():
    subprocess.run(
        [sys.executable, "-m", "native", "down"], capture_output=True, text=True, timeout=180, env=redis_stack_env()
    )


@pytest.fixture(scope="package")
def redis_stack():
    t0 = time.monotonic()
    native_down()  # this instance's previous stack, or the session's RabbitMQ stack on these ports
    forget_earlier_stacks()  # an earlier stack's targets and counters must not mix into these tests
    out = redis_up()
    print(out)
    print(
        f"Redis-broker stack up in {time.monotonic() - t0:.1f}s"
        + (" beside the RabbitMQ stack" if SIDE_BY_SIDE else " (after stopping the previous one)")
    )
    yield out
    native_down()
