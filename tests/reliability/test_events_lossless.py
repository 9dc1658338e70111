"""Metrics lose no events under sustained load near the pipeline's capacity.

Load comes from the app (`python -m loadtest`, through POST /api/tasks) for 2 minutes. Every task
the workers ran (their own `stats` counters) must be counted once, exactly, by the exporter and by
Flower as seen through Prometheus. Celery's default event_queue_ttl (5 s) loses events here; the
bundle's 60 s does not.
"""

import subprocess
import sys
import time

import pytest

from native import paths
from tests.live import FLOWER_STACK_WORKERS, prom_scalar, settled, wait_for
from worker.celery_app import app as celery_app

pytestmark = pytest.mark.stack

RATE = 200  # tasks/s: see docs/performance.md for the pipeline's capacity on 2 cores
DURATION = 120  # seconds
STALLED = 60  # seconds without a count moving: what is still missing is lost
CATCH_UP_MAX = 600


def tasks_run_by_workers():
    stats = celery_app.control.inspect(timeout=3).stats() or {}
    return sum(sum(s.get("total", {}).values()) for s in stats.values()), len(stats)


@pytest.mark.heavy
def test_two_minutes_near_capacity_lose_no_event(stack, tmp_path):
    # The stack's workers only: a scaled-away worker's series may be purged by Flower during the run.
    # The exporter's task series carry no hostname (its launcher's default) and are never purged.
    # The workers' own count of the tasks they started is checked the same way (CeleryEventsLost).
    queries = (
        f"sum(celery_worker_tasks_started_total{{{FLOWER_STACK_WORKERS}}})",
        'sum(celery_task_succeeded_total{job="celery_exporter"})'
        ' + sum(celery_task_failed_total{job="celery_exporter"})',
        f'sum(flower_events_total{{type=~"task-succeeded|task-failed", {FLOWER_STACK_WORKERS}}})',
    )
    before = settled(*queries)
    ran_before, workers = tasks_run_by_workers()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest",
            "steady",
            "--rate",
            str(RATE),
            "--duration",
            str(DURATION),
            "--timeout",
            "0",
            "--concurrency",
            "8",
            "--wait-timeout",
            "300",
            "--json",
            str(tmp_path / "load.json"),
        ],
        cwd=paths.REPO,
        capture_output=True,
        text=True,
        timeout=DURATION + 400,
    )
    print(result.stdout[-2000:])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    ran = (
        wait_for(lambda: (n := tasks_run_by_workers()) and n[1] == workers and n[0], 60, message="every worker's stats")
        - ran_before
    )
    assert ran >= RATE * DURATION * 0.95, f"only {ran} tasks ran"
    # A monitor that lags still counts: the events it holds (delivered, or queued within their TTL)
    # keep arriving. Lost ones never do: wait while the counts move, fail once they stop short.
    counted, moved, t0 = {}, time.monotonic(), time.monotonic()
    while True:
        now_counted = {q: prom_scalar(q) - before[q] for q in queries}
        now = time.monotonic()
        if now_counted == {q: ran for q in queries}:
            break
        if now_counted != counted:
            counted, moved = now_counted, now
        assert now - moved < STALLED and now - t0 < CATCH_UP_MAX, (
            f"tasks run by the workers: {ran}; counted: {counted}, unchanged for {now - moved:.0f}s "
            f"({now - t0:.0f}s after the load)"
        )
        time.sleep(2)
    print(f"tasks run by the workers: {ran}; every monitor counted them all {now - t0:.0f}s after the load")
    # ... and nothing counted twice.
    after = settled(*queries, quiet=10)
    assert {q: after[q] - before[q] for q in queries} == {q: ran for q in queries}
