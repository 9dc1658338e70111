"""End to end on the native stack with 3 workers: the guide's scenario 2 and the metrics pipeline."""

import psutil
import pytest
import requests

from mixin.config import Config
from native import paths
from tests.live import FLOWER, native_cli, prom_query, prom_scalar, settled, submit, wait_finished, wait_for

JOBS = Config().jobs.model_dump()

pytestmark = pytest.mark.stack


def test_every_prometheus_target_is_up(stack):
    # The session's stack runs RabbitMQ: every job but the Redis broker's (tests/redis covers that).
    expected = set(JOBS.values()) - {JOBS["redis_broker"]}

    def all_up():
        result = prom_query("up")
        return len(result) >= len(expected) + 2 and all(r["value"][1] == "1" for r in result) and result

    result = wait_for(all_up, 60, message="every target up == 1")
    jobs = {r["metric"]["job"] for r in result}
    assert jobs == expected
    workers = [r for r in result if r["metric"]["job"] == JOBS["worker"]]
    assert len(workers) == 3


def test_guide_scenario_2_spreads_20_tasks_over_3_workers_and_every_task_is_counted(stack):
    succeeded = 'sum(celery_task_succeeded_total{job="celery_exporter",name="process_task"})'
    # The bundle's Flower counts per worker, not per task name (worker/flower_metrics.py): only
    # process_task runs meanwhile, so its counts grow by these tasks alone.
    flower_ok = 'sum(flower_events_total{job="flower",type="task-succeeded"})'
    flower_received = 'sum(flower_events_total{job="flower",type="task-received"})'
    before = settled(succeeded, flower_ok, flower_received)
    totals_before = {
        name: sum(w["stats"]["total"].values()) if w.get("stats", {}).get("total") else 0
        for name, w in requests.get(f"{FLOWER}/api/workers?refresh=1", timeout=10).json().items()
    }

    ids = submit(task="process_task", count=20, timeout=1.5, task_num_start=1)
    done = wait_finished(ids, 120)
    assert {b["state"] for b in done.values()} == {"SUCCESS"}
    nums = sorted(b["result"]["task_num"] for b in done.values())
    assert nums == list(range(1, 21))
    for task_id, body in done.items():
        assert body["result"] == {"status": "success", "task_num": body["result"]["task_num"], "task_id": task_id}

    workers = requests.get(f"{FLOWER}/api/workers?refresh=1", timeout=10).json()
    assert len(workers) == 3 and all(name.startswith("celery_worker-") and "@" in name for name in workers)
    ran = {name: sum(w["stats"]["total"].values()) - totals_before.get(name, 0) for name, w in workers.items()}
    assert sum(ran.values()) == 20
    assert all(n > 0 for n in ran.values()), f"not spread over the 3 workers: {ran}"

    # The exporter and Flower account for every task, as seen through Prometheus.
    for query in (succeeded, flower_ok, flower_received):
        wait_for(lambda: prom_scalar(query) - before[query] == 20, 60, message=f"{query} to grow by 20")
    # ... and by no more: nothing was counted twice.
    after = settled(succeeded, flower_ok, flower_received, quiet=6)
    assert {q: after[q] - before[q] for q in after} == {q: 20 for q in after}


def test_each_worker_reports_cpu_and_memory_with_its_full_nodename(stack):
    for metric in (
        "celery_worker_cpu_seconds_total",
        "celery_worker_memory_rss_bytes",
        "celery_worker_cpu_limit_cores",
        "celery_worker_pool_processes",
    ):
        result = wait_for(lambda: len(prom_query(metric)) == 3 and prom_query(metric), 30, message=metric)
        names = sorted(r["metric"]["worker"] for r in result)
        assert [n.split("@")[0] for n in names] == ["celery_worker-1", "celery_worker-2", "celery_worker-3"]
        assert all(float(r["value"][1]) > 0 for r in result)
    # Flower uses the same full names (the exporter collapses them to the host).
    flower = {r["metric"]["worker"] for r in prom_query("flower_worker_online == 1")}
    ours = {r["metric"]["worker"] for r in prom_query("celery_worker_memory_rss_bytes")}
    assert ours <= flower


def our_celery_processes():
    """Pids of this stack's Celery processes: the other test stacks of the run (NATIVE_INSTANCE) run
    the same command line and replace their own pool processes meanwhile."""
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if "celery -A worker.celery_app" not in " ".join(proc.info["cmdline"] or ()):
                continue
            if proc.environ().get("NATIVE_INSTANCE", "") == paths.INSTANCE:
                pids.append(proc.info["pid"])
        except psutil.Error:
            continue
    return sorted(pids)


def test_a_second_up_starts_no_duplicates(stack):
    before = our_celery_processes()
    assert before, "no Celery process of this stack found"
    result = native_cli("up", "--workers", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "started" not in result.stdout.replace("already running", "")
    assert our_celery_processes() == before
    status = native_cli("status")
    for name in ("prometheus", "alertmanager", "flower", "celery_exporter", "app", "celery_worker-3"):
        assert any(line.startswith(name) and "healthy" in line for line in status.stdout.splitlines()), status.stdout
