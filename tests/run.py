"""`make test`: the whole suite, in five pytest processes side by side.

- stack: the tests of the session's native stack (marked `stack`), in file order, its output shown
  as it runs;
- alerts: the longest of those (alert conditions induced for real, latency and SLO alerts, memory
  containment) on a second RabbitMQ-broker stack of its own: its own ports and vhost on the shared
  broker;
- redis: the Redis-broker suite (tests/redis) on a second native stack of its own (NATIVE_INSTANCE,
  ports moved by NATIVE_PORT_OFFSET);
- other: the static, unit, integration and k8s tests and the bench's own stack, on two xdist
  workers (one file per worker at a time: a module's processes serve its tests);
- baselines: the alert tests that wait out a baseline, and the prefetch alert's, on a stack of
  their own.

Most of the suite waits (for alert windows, for tasks), so the processes overlap; tests that load
the machine never overlap, and tests that stop a server all stacks share run alone (tests/locks.py).
The output of every process but stack is kept in .native/test-<name>.log and printed at the end.
Extra arguments go to every process.
Exit status: 0 when all five passed.
"""

import os
import subprocess
import sys
import time

from native import paths
from native.ports import PORTS
from tests import locks

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
# About half of the stack tests' time, on two stacks of their own (each its own ports and vhost on
# the shared broker): the alert conditions, latency and SLOs, memory containment; and the tests that
# wait out a baseline (about ten minutes of mostly waiting) with the prefetch alert's.
BASELINE_TEST = "tests/live_alerts/test_alerts_fire_and_resolve.py::test_runtime_rising_and_throughput_below_baseline"
PREFETCH = "tests/live_alerts/test_prefetch_alert.py"
ALERTS = [
    "tests/live_alerts/test_latency_and_slo.py",
    "tests/live_alerts/test_alerts_fire_and_resolve.py",
    "tests/reliability/test_memory_containment.py",
]


def stack_of_its_own(name, offset):
    return {
        "NATIVE_INSTANCE": name,
        "NATIVE_PORT_OFFSET": str(offset),
        "RMQ_URL": f"amqp://guest:guest@127.0.0.1:{PORTS['rabbitmq']}/celery-{name}",
    }


# The stack tests' results Redis: one of their own (native mode starts it), so that stopping it
# (tests/reliability/test_faults.py) stops no other stack's.
STACK_REDIS_PORT = PORTS["redis"] + 3000
STACK_ENV = {"REDIS_URL": f"redis://127.0.0.1:{STACK_REDIS_PORT}/0"}
RUNS = {
    "stack": (
        [*PYTEST, "tests", "--ignore=tests/redis", *(f"--ignore={f}" for f in [*ALERTS, PREFETCH]), "-m", "stack"],
        STACK_ENV,
    ),
    "alerts": (
        [*PYTEST, *ALERTS, "-m", "stack", f"--deselect={BASELINE_TEST}"],
        stack_of_its_own("alerts", 2000),
    ),
    "redis": ([*PYTEST, "tests/redis"], {"NATIVE_INSTANCE": "redis", "NATIVE_PORT_OFFSET": "1000"}),
    "other": ([*PYTEST, "tests", "--ignore=tests/redis", "-m", "not stack", "-n", "2", "--dist", "loadfile"], {}),
    "baselines": ([*PYTEST, BASELINE_TEST, PREFETCH, "-m", "stack"], stack_of_its_own("baselines", 4000)),
}
FOREGROUND = "stack"


def main(argv):
    t0 = time.monotonic()
    logs, procs = {}, {}
    locks.expect_processes(RUNS)

    for name, (argv0, env) in RUNS.items():
        env = {**os.environ, **env, "TEST_RUN_NAME": name}
        if name == FOREGROUND:
            procs[name] = subprocess.Popen([*argv0, *argv], cwd=paths.REPO, env=env)
            continue
        logs[name] = paths.REPO / ".native" / f"test-{name}.log"
        logs[name].parent.mkdir(parents=True, exist_ok=True)
        with logs[name].open("w") as log:
            procs[name] = subprocess.Popen(
                [*argv0, *argv], cwd=paths.REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
    try:
        status = {name: proc.wait() for name, proc in procs.items()}
    except KeyboardInterrupt:
        for proc in procs.values():
            proc.terminate()
        raise
    # Restarted daemonized by the Redis fault test, it outlives the stack's `down`.
    subprocess.run(["redis-cli", "-p", str(STACK_REDIS_PORT), "shutdown", "nosave"], capture_output=True, timeout=30)
    for name, log in logs.items():
        print(f"\n===== make test: the {name} tests ({log.relative_to(paths.REPO)}) =====")
        print(log.read_text(), end="")
    summary = ", ".join(f"{name} exit {code}" for name, code in status.items())
    print(
        f"\nmake test: {summary}; {(time.monotonic() - t0) / 60:.1f} min; slowest tests in .native/test-durations-*.txt"
    )
    return 0 if not any(status.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
