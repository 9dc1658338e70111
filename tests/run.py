"""`make test`: the whole suite, in two pytest processes side by side.

- The Redis-broker suite (tests/redis) on a second native stack of its own (NATIVE_INSTANCE=redis,
  ports moved by NATIVE_PORT_OFFSET), its output kept in .native/test-redis.log and printed at the end;
- everything else with pytest-xdist: the tests of the session's native stack in one group, in
  order, on one worker; the bench's stack and the static, unit and integration tests on the other.

Most of the suite waits (for alert windows, for tasks), so the two stacks and the static checks
overlap; tests that load the machine take a shared lock and never overlap (tests/conftest.py).
Extra arguments go to both pytest processes. Exit status: 0 when both passed.
"""

import os
import subprocess
import sys
import time

from native import paths

REDIS_ENV = {"NATIVE_INSTANCE": "redis", "NATIVE_PORT_OFFSET": "1000"}
WORKERS = "2"


def main(argv):
    pytest = [sys.executable, "-m", "pytest"]
    log_path = paths.REPO / ".native" / "test-redis.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with log_path.open("w") as log:
        redis = subprocess.Popen(
            [*pytest, "tests/redis", *argv],
            cwd=paths.REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **REDIS_ENV},
        )
        try:
            main_status = subprocess.call(
                [*pytest, "tests", "--ignore=tests/redis", "-n", WORKERS, "--dist", "loadgroup", *argv], cwd=paths.REPO
            )
            redis_status = redis.wait()
        except KeyboardInterrupt:
            redis.terminate()
            redis.wait()
            raise
    print(
        f"\n===== tests/redis on its own stack (NATIVE_INSTANCE={REDIS_ENV['NATIVE_INSTANCE']}): "
        f"{log_path.relative_to(paths.REPO)} ====="
    )
    print(log_path.read_text(), end="")
    print(
        f"\nmake test: main suite exit {main_status}, tests/redis exit {redis_status}, "
        f"{(time.monotonic() - t0) / 60:.1f} min; slowest tests in .native/test-durations*.txt"
    )
    return 0 if main_status == redis_status == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
