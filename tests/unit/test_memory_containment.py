"""Containment in the worker: the retained-memory cap per pool process, the Celery limits taken from
the environment, and the replacement counter fed by a real billiard pool."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from billiard.pool import Pool

from worker import settings, tasks
from worker.metrics import PoolReplacements, WorkerProcessTreeCollector

MB = 1024 * 1024


@pytest.fixture
def empty_retained():
    tasks._retained.clear()
    yield
    tasks._retained.clear()


def test_retained_memory_is_capped_per_process(empty_retained, monkeypatch):
    monkeypatch.setattr(settings, "WORKER_MAX_RETAINED_MB", 5)
    rss0 = psutil.Process().memory_info().rss
    assert tasks._retain_memory(3) == 3 * MB
    assert tasks._retain_memory(3) == 2 * MB  # only what is left under the cap
    assert tasks._retain_memory(3) == 0
    assert tasks.retained_bytes() == 5 * MB
    # The pages are really written: RSS grew by the retained amount, not more.
    grown = psutil.Process().memory_info().rss - rss0
    assert 4 * MB < grown < 8 * MB


def test_celery_limits_come_from_the_environment():
    code = ("from worker.celery_app import app; c = app.conf; "
            "print(c.worker_max_memory_per_child, c.worker_max_tasks_per_child, c.task_acks_late)")
    env = {**os.environ, "WORKER_MAX_MEMORY_PER_CHILD_MB": "100", "WORKER_MAX_TASKS_PER_CHILD": "50"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["102400", "50", "True"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_MAX_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(256 * 1024), "None", "True"]


def _pid(_=None):
    return os.getpid()


def _wait(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_replacements_are_counted_by_reason():
    """A real billiard pool: processes leaving at maxtasksperchild count as recycled, a SIGKILLed one
    as died; a collector exports both with the worker label."""
    pool = Pool(processes=1, maxtasksperchild=1)
    replacements = PoolReplacements()
    assert replacements.attach(pool)
    try:
        pids = {pool.apply(_pid) for _ in range(3)}
        assert len(pids) == 3  # a fresh process for every task
        assert _wait(lambda: replacements.snapshot()["recycled"] >= 2)
        victim = pool._pool[0].pid if pool._pool else None
        assert victim
        os.kill(victim, signal.SIGKILL)
        assert _wait(lambda: replacements.snapshot()["died"] == 1)
        assert pool.apply(_pid) != victim
    finally:
        pool.terminate()
        pool.join()
    collector = WorkerProcessTreeCollector("celery_worker-1@host", replacements=replacements)
    fams = {f.name: f for f in collector.collect()}
    samples = {s.labels["reason"]: s.value for s in fams["celery_worker_pool_process_replacements"].samples
               if s.name.endswith("_total")}
    assert samples["died"] == 1 and samples["recycled"] >= 2
    assert all(s.labels["worker"] == "celery_worker-1@host" for s in fams["celery_worker_pool_process_replacements"].samples)
    assert fams["celery_worker_max_memory_per_child_bytes"].samples[0].value == settings.WORKER_MAX_MEMORY_PER_CHILD_MB * MB


def test_no_replacement_counter_without_a_process_pool():
    assert not PoolReplacements().attach(object())
    names = {f.name for f in WorkerProcessTreeCollector("w@h").collect()}
    assert "celery_worker_pool_process_replacements" not in names
    assert "celery_worker_pool_process_max_rss_bytes" in names
