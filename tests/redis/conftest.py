"""The Redis-broker stack: one native stack with BROKER=redis and 3 workers, shared by tests/redis.

Its tests run last in the session (after every RabbitMQ-stack test), so the session's RabbitMQ stack
is stopped once, the Redis one started once, and nothing restarts the RabbitMQ stack afterwards.
The stack runs the fast alerting profile, and a short visibility timeout (with tasks capped below it)
so that redelivery after a SIGKILL takes seconds, not the default 11 minutes.
"""
import os
import subprocess
import sys
import time

import pytest

from native import env as native_env, paths
from tests.live import STACK_ENV, STACK_WORKERS, forget_earlier_stacks

VISIBILITY_TIMEOUT = 30
REDIS_STACK_ENV = {**STACK_ENV, "BROKER": "redis", "VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
                   "MAX_TIMEOUT_SECONDS": "20"}


def redis_stack_env():
    env = {k: v for k, v in os.environ.items() if k not in ("BROKER_URL", "RMQ_URL")}
    return {**env, **REDIS_STACK_ENV}


def redis_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "native", *args], capture_output=True, text=True,
                          timeout=timeout, env=redis_stack_env())


def redis_broker_url():
    """The broker URL of the Redis-broker stack, derived as `python -m native` derives it from
    redis_cli's environment (this process's own BROKER_URL, and so worker.celery_app, may name RabbitMQ)."""
    env = {**native_env.DEFAULTS, **native_env.read_dotenv(paths.REPO / ".env"), **redis_stack_env()}
    native_env.select_broker(env)
    return env["BROKER_URL"]


def redis_up(workers=STACK_WORKERS):
    result = redis_cli("up", "--workers", str(workers))
    assert result.returncode == 0, f"BROKER=redis make up failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def pytest_collection_modifyitems(session, config, items):
    here = os.path.dirname(__file__)
    ours = [i for i in items if str(i.fspath).startswith(here)]
    items[:] = [i for i in items if i not in ours] + ours


@pytest.fixture(scope="package")
def redis_stack():
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "native", "down"], capture_output=True, text=True, timeout=180)
    forget_earlier_stacks()  # the RabbitMQ stack's targets and counters must not mix into these tests
    out = redis_up()
    print(out)
    print(f"Redis-broker stack up in {time.monotonic() - t0:.1f}s (after stopping the previous one)")
    yield out
    subprocess.run([sys.executable, "-m", "native", "down"], capture_output=True, text=True, timeout=180)
