"""Session fixtures. The native stack (3 workers) starts once per session and is shared."""
import subprocess
import sys

import pytest

from native import process

STACK_WORKERS = 3


@pytest.fixture(scope="session")
def stack():
    """The running native stack with 3 workers; stopped at the end if this session started it."""
    was_running = bool(process.owned())
    result = subprocess.run([sys.executable, "-m", "native", "up", "--workers", str(STACK_WORKERS)],
                            capture_output=True, text=True, timeout=300)
    print(result.stdout)
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
    yield result.stdout
    if not was_running:
        subprocess.run([sys.executable, "-m", "native", "down"], timeout=180)
