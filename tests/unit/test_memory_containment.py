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

from native.paths import REPO
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
    assert tasks._retain_memory(3) == 3 * MB
    assert tasks._retain_memory(3) == 2 * MB  # only what is left under the cap
    assert tasks._retain_memory(3) == 0
    assert tasks.retained_bytes() == 5 * MB


def test_retained_memory_is_really_resident():
    # In a process of its own: in a test worker, memory that other tests free meanwhile hides growth.
    code = (
        "import psutil; from worker import settings, tasks; settings.WORKER_MAX_RETAINED_MB = 5; "
        "rss0 = psutil.Process().memory_info().rss; tasks._retain_memory(3); tasks._retain_memory(3); "
        "print(psutil.Process().memory_info().rss - rss0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    grown = int(out.stdout.split()[-1])
    # The pages are really written: RSS grew by the 5 MB retained, not more.
    assert 4.5 * MB < grown < 7 * MB, grown


def test_celery_limits_come_from_the_environment():
    code = (
        "from worker.celery_app import app; c = app.conf; "
        "print(c.worker_max_memory_per_child, c.worker_max_tasks_per_child, c.task_acks_late)"
    )
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


def _mark_and_sleep(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)


def _run_in(pool):
    return pool.apply_async(_pid).get(timeout=20)


def test_replacements_are_counted_by_reason(tmp_path):
    """Real billiard pools: processes leaving at maxtasksperchild count as recycled, a SIGKILLed one
    as died; a collector exports both with the worker label."""
    replacements = PoolReplacements()
    recycling = Pool(processes=1, maxtasksperchild=1)
    try:
        assert replacements.attach(recycling)
        assert len({_run_in(recycling) for _ in range(3)}) == 3  # a fresh process for every task
        assert _wait(lambda: replacements.snapshot()["recycled"] >= 2)
        assert replacements.snapshot()["died"] == 0
    finally:
        recycling.terminate()
    # Its lost job is reported after lost_worker_timeout (10 s by default), which terminate() waits out.
    steady = Pool(processes=1, lost_worker_timeout=1)
    try:
        assert replacements.attach(steady)
        first = _run_in(steady)
        assert _run_in(steady) == first  # no limit: the same process keeps running
        # Kill it while it runs a task (killed while idle it could take the pool's queue lock along).
        marker = tmp_path / "running"
        steady.apply_async(_mark_and_sleep, (str(marker),))
        assert _wait(lambda: marker.exists() and marker.read_text())
        victim = int(marker.read_text())
        os.kill(victim, signal.SIGKILL)
        assert _wait(lambda: replacements.snapshot()["died"] == 1)
        assert _run_in(steady) != victim
    finally:
        steady.terminate()
    collector = WorkerProcessTreeCollector("celery_worker-1@host", replacements=replacements)
    fams = {f.name: f for f in collector.collect()}
    family = fams["celery_worker_pool_process_replacements"]
    samples = {s.labels["reason"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert samples["died"] == 1 and samples["recycled"] >= 2
    assert all(s.labels["worker"] == "celery_worker-1@host" for s in family.samples)
    assert (
        fams["celery_worker_max_memory_per_child_bytes"].samples[0].value
        == settings.WORKER_MAX_MEMORY_PER_CHILD_MB * MB
    )


def test_no_replacement_counter_without_a_process_pool():
    assert not PoolReplacements().attach(object())
    names = {f.name for f in WorkerProcessTreeCollector("w@h").collect()}
    assert "celery_worker_pool_process_replacements" not in names
    assert "celery_worker_pool_process_max_rss_bytes" in names


@pytest.mark.parametrize("budget, concurrency, expected", [(6000, 2, 256), (512, 2, 128), (100, 4, 64)])
def test_default_limit_fits_the_machine(monkeypatch, budget, concurrency, expected):
    monkeypatch.setattr(settings, "memory_budget_mb", lambda: budget)
    monkeypatch.setattr(settings, "WORKER_CONCURRENCY", concurrency)
    assert settings.default_max_memory_per_child_mb() == expected


def test_memory_budget_is_a_share_of_this_machine():
    assert 0 < settings.memory_budget_mb() <= psutil.virtual_memory().total // MB


def test_compose_passes_the_limits_to_workers_and_app():
    import pathlib

    import yaml

    repo = pathlib.Path(__file__).resolve().parents[2]
    services = yaml.safe_load((repo / "compose.yaml").read_text())["services"]
    for name in ("celery_worker", "app"):
        env = services[name]["environment"]
        for var in (
            "WORKER_MAX_MEMORY_PER_CHILD_MB",
            "WORKER_MAX_TASKS_PER_CHILD",
            "WORKER_MAX_RETAINED_MB",
            "MAX_TASK_SECONDS_PER_REQUEST",
            "MAX_MEMORY_MB_PER_REQUEST",
            "FAULT_INJECTION",
        ):
            assert env[var] == "${%s:-}" % var, (name, var)  # empty: worker/settings.py's default
    production = yaml.safe_load((repo / "compose.production.yaml").read_text())["services"]
    assert production["app"]["environment"]["PROFILE"] == "production"


def _keep(mb):
    tasks._retain_memory(mb)
    return os.getpid()


def _pool_scenario():
    """Run in a fresh interpreter (a worker's size), not forked from this test session: a forked pool
    process starts as large as its parent, and a long pytest session alone can be over the limit.
    Prints the pid that ran each task and the replacement count as JSON."""
    import json

    pool = Pool(processes=1, max_memory_per_child=settings.WORKER_MAX_MEMORY_PER_CHILD_MB * 1024)
    counted = PoolReplacements()
    counted.attach(pool)
    try:
        pids = [
            pool.apply_async(_keep, (settings.WORKER_MAX_RETAINED_MB // 2,)).get(timeout=30),
            pool.apply_async(_keep, (0,)).get(timeout=30),
            pool.apply_async(_keep, (settings.WORKER_MAX_RETAINED_MB,)).get(timeout=30),
        ]
        recycled = _wait(lambda: counted.snapshot()["recycled"] == 1) and counted.snapshot()["recycled"]
        pids.append(pool.apply_async(_keep, (0,)).get(timeout=30))
        print(json.dumps({"pids": pids, "recycled": recycled}))
    finally:
        pool.terminate()


def test_a_process_at_the_retained_cap_is_over_the_memory_limit_and_replaced():
    """With the defaults, a pool process that keeps all it may keep is over worker_max_memory_per_child,
    so billiard replaces it after that task (real pool, real memory)."""
    import json

    code = "from tests.unit.test_memory_containment import _pool_scenario; _pool_scenario()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    first, kept, capped, after = measured["pids"]
    assert kept == first  # half the cap: under the limit, the process is kept
    assert capped == first  # the cap: the task ran there, and the process is replaced after it
    assert measured["recycled"] == 1
    assert after != first
