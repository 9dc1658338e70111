"""Session fixtures. The native stack (3 workers) starts once per session and is shared.

The stack runs the alerting profile "fast" (native/derive.py): the real rules with shorter `for:`,
windows and offsets, so that live alert tests take seconds, not hours.
"""
import os

import pytest

from native import dotenv, env as native_env, process
from tests.live import STACK_WORKERS, forget_earlier_stacks, native_cli

# Tests talk to the broker and Redis as the stack does (RMQ_URL with the .env user).
dotenv.ensure(lambda message: None)
_env = native_env.build()
for _name in ("RMQ_URL", "REDIS_URL"):
    os.environ[_name] = _env[_name]


@pytest.fixture(scope="session")
def stack():
    """The running native stack with 3 workers; stopped at the end if this session started it."""
    was_running = bool(process.owned())
    if not was_running:
        forget_earlier_stacks()
    result = native_cli("up", "--workers", str(STACK_WORKERS))
    print(result.stdout)
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
    yield result.stdout
    if not was_running:
        native_cli("down", timeout=180)
