"""Nothing lost under faults: broker restart, worker SIGKILL, monitor restarts, Prometheus restart,
Redis down. Each test injects the fault for real on the native stack (tests/faults.py)."""

import time

import pytest
import requests

from native.ports import PORTS
from tests import faults
from tests.alerting import AlertCheck, prometheus_alerts
from tests.live import (
    APP,
    FLOWER,
    PROMETHEUS,
    STACK_WORKERS,
    SteadyLoad,
    flower_task,
    prom_query,
    prom_scalar,
    settled,
    submit,
    wait_finished,
    wait_for,
)

pytestmark = pytest.mark.stack


@pytest.mark.exclusive  # the machine's RabbitMQ: every stack of the run shares it
def test_broker_restart_loses_no_task(stack):
    target = AlertCheck("CeleryTargetDown", job="rabbitmq")
    load = SteadyLoad(5, timeout=0.1).start()
    time.sleep(5)
    faults.stop_broker()
    t_down = time.monotonic()
    try:
        target.fire()
        wait_for(lambda: load.unavailable, 30, message="the app to answer 503 while the broker is down")
        time.sleep(max(0.0, 20 - (time.monotonic() - t_down)))
    finally:
        faults.start_broker()
    time.sleep(15)
    load.stop()
    assert not load.other, load.other[:3]
    assert all("error" in body for body in load.unavailable)
    print(
        f"broker down {time.monotonic() - t_down:.0f}s: {len(load.ids)} accepted (202), "
        f"{len(load.unavailable)} refused with 503"
    )
    done = wait_finished(load.ids, 180)
    assert [i for i, b in done.items() if b["state"] != "SUCCESS"] == []
    target.resolve()
    # Workers, Flower and the exporter reconnected by themselves: a new task is seen by all three.
    wait_for(
        lambda: len(requests.get(f"{FLOWER}/api/workers?refresh=1", timeout=10).json()) == STACK_WORKERS,
        60,
        message="every worker back in Flower",
    )
    before = settled("sum(celery_task_succeeded_total)", 'sum(flower_events_total{type="task-succeeded"})')
    wait_finished(submit(task="process_task", count=5, timeout=0), 60)
    for query, value in before.items():
        wait_for(lambda: prom_scalar(query) - value == 5, 90, message=f"{query} to count new tasks")


def test_worker_sigkill_mid_task_redelivers_it(stack):
    [task_id] = submit(task="process_task", count=1, timeout=8, task_num_start=777)

    def running_on():
        info = flower_task(task_id)
        return info.get("state") == "STARTED" and info.get("worker")

    worker = wait_for(running_on, 30, message="the task to start")
    name = worker.split("@")[0]
    faults.kill_service(name)
    try:
        body = wait_finished([task_id], 120)[task_id]
        assert body["state"] == "SUCCESS" and body["result"]["task_num"] == 777
        info = flower_task(task_id)
        assert info["worker"] != worker, "the task was not redelivered to another worker"
    finally:
        faults.restore_stack()
    # The dead worker does not stay "online" in Flower's metrics.
    wait_for(
        lambda: prom_query(f'flower_worker_online{{worker="{worker}"}} == 1') and True,
        60,
        message="the restarted worker online again",
    )


def test_monitor_restarts_cause_no_false_alert(stack):
    watch = ("CelerySuccessRateLow", "CeleryTaskSuccessRateLow", "CeleryThroughputBelowBaseline")
    with SteadyLoad(2, task="process_task", timeout=0):
        time.sleep(40)
        # An alert already pending or firing before the restarts has another cause (the throughput
        # baseline of a heavier test that ran just before, for one): not the restarts'.
        before = {name for name in watch if prometheus_alerts(name, {})}
        watch = tuple(name for name in watch if name not in before)
        print(f"watched: {', '.join(watch)}; already active before the restarts: {', '.join(before) or 'none'}")
        for service in ("celery_exporter", "flower"):
            faults.restart_service(service)
        # Metrics resume: over a window that starts after the restarts, both monitors count tasks.
        time.sleep(35)
        for query in (
            "sum(increase(celery_task_succeeded_total[30s]))",
            'sum(increase(flower_events_total{type="task-succeeded"}[30s]))',
        ):
            wait_for(lambda: prom_scalar(query) > 0, 30, message=f"{query} > 0 after the restart")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name in watch:
                assert not prometheus_alerts(name, {}), f"{name} after a monitor restart"
            time.sleep(2)


def test_prometheus_restart_keeps_its_data(stack):
    # Samples of a fixed past window must read the same after the restart.
    probe, at = 'count_over_time(up{job="app"}[5m])', time.time() - 15
    before = prom_scalar(probe, at=at)
    assert before > 5
    faults.restart_service("prometheus")
    wait_for(
        lambda: requests.get(f"{PROMETHEUS}/-/ready", timeout=5).status_code == 200, 60, message="Prometheus ready"
    )
    assert prom_scalar(probe, at=at) == before


# Alone when it stops the machine's Redis, which every stack of the run shares; `make test` gives this
# stack a results Redis of its own (tests/run.py), which it stops beside the others.
@pytest.mark.exclusive if faults.redis_port() == PORTS["redis"] else pytest.mark.stack
def test_redis_down_tasks_still_run_and_lookups_say_unavailable(stack):
    faults.stop_redis()
    try:
        ids = submit(task="process_task", count=3, timeout=0.2)  # sending needs only the broker
        r = requests.get(f"{APP}/api/tasks/{ids[0]}", timeout=30)
        assert r.status_code == 503 and "result backend" in r.json()["error"]
        # The workers run them (Flower sees it from the events); the results wait for Redis.
        wait_for(
            lambda: all(flower_task(i).get("state") in ("STARTED", "SUCCESS") for i in ids),
            60,
            message="the tasks to run without Redis",
        )
    finally:
        faults.start_redis()
    # No result was lost: the workers stored them once Redis was back.
    done = wait_finished(ids, 90)
    assert {b["state"] for b in done.values()} == {"SUCCESS"}
    done = wait_finished(submit(task="process_task", count=2, timeout=0), 60)
    assert {b["state"] for b in done.values()} == {"SUCCESS"}
