"""Each alert condition that can happen in minutes is induced for real on the native stack; the
alert fires in Prometheus, Alertmanager delivers it to the webhook with the rule's labels and
annotations, and it resolves after the condition ends. The stack runs the fast profile (real rules,
shorter `for:`/windows, see native/derive.py); every wait is bounded by that rule's own timing.
"""

import time

import pytest
import requests

from mixin.config import Config
from mixin.queries import Queries
from native import derive
from tests import faults
from tests.alerting import AlertCheck
from tests.live import FLOWER, SteadyLoad, STACK_WORKERS, prom_query, submit, task_state, wait_for
from worker.celery_app import app as celery_app

pytestmark = pytest.mark.stack
QUEUE = {"queue": "celery"}


def pause_consumers():
    celery_app.control.cancel_consumer("celery", reply=True, timeout=5, limit=STACK_WORKERS)


def resume_consumers():
    celery_app.control.add_consumer("celery", reply=True, timeout=5, limit=STACK_WORKERS)


def purge_queue():
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


def test_runtime_rising_and_throughput_below_baseline(stack):
    """Baselines: 150 s of fast tasks; then slower tasks (runtime alert); then no tasks (throughput)."""
    runtime = AlertCheck("CeleryTaskRuntimeRising", name="process_task")
    with SteadyLoad(2, task="process_task", timeout=0.1):
        time.sleep(150)
    with SteadyLoad(1.5, task="process_task", timeout=3.0):
        runtime.fire()
    throughput = AlertCheck("CeleryThroughputBelowBaseline")
    runtime.resolve()
    throughput.fire()
    throughput.resolve()


def test_no_consumer(stack):
    """The alert, and the broker's age of the oldest waiting message (the Latency dashboard's panel)
    rising with the time the tasks have waited."""
    check = AlertCheck("CeleryQueueNoConsumer", **QUEUE)
    oldest = Queries(Config()).oldest_message_age('queue="celery"')
    pause_consumers()
    try:
        purge_queue()  # the head message is then this test's
        published = time.time()
        submit(task="process_task", count=3, timeout=0)
        check.fire()
        waited = time.time() - published
        age = wait_for(lambda: prom_query(oldest), 30, message="the oldest message's age in Prometheus")
        age, at = float(age[0]["value"][1]), float(age[0]["value"][0])
        # Whole-second timestamps, and the sample is up to one scrape (5 s) old.
        assert waited - 10 <= age <= at - published + 1, (age, waited)
    finally:
        resume_consumers()
    check.resolve()


def test_success_rate_below_95_percent(stack):
    overall = AlertCheck("CelerySuccessRateLow")
    per_task = AlertCheck("CeleryTaskSuccessRateLow", name="process_task")
    t0 = time.monotonic()
    with (
        SteadyLoad(3, task="process_task", timeout=0, fail_rate=1.0) as failing,
        SteadyLoad(3, task="process_task", timeout=0),
    ):
        overall.fire()
        per_task.fire()
        latency = time.monotonic() - t0
    print(f"CelerySuccessRateLow: fault -> webhook {latency:.1f}s (bound {overall.timeout - 60:.0f}s)")
    assert failing.ids
    overall.resolve()
    per_task.resolve()


def test_backlog_and_growing_queue(stack):
    backlog = AlertCheck("CeleryQueueBacklog", **QUEUE)
    growing = AlertCheck("CeleryQueueGrowing", **QUEUE)
    # Occupy every pool process, then keep adding: the queue grows by about one message a second.
    long_ids = submit(task="process_task", count=2 * STACK_WORKERS * 2, timeout=300)
    try:
        with SteadyLoad(1, task="process_task", timeout=0):
            backlog.fire()
            growing.fire()
    finally:
        purge_queue()  # the test's own queued tasks
        for task_id in long_ids:
            celery_app.control.revoke(task_id, terminate=True)
    backlog.resolve()
    growing.resolve()
    wait_for(
        lambda: all(task_state(i)["state"] in ("REVOKED", "SUCCESS") for i in long_ids),
        60,
        message="the long tasks to be revoked",
    )


@pytest.mark.heavy
def test_worker_cpu_above_80_percent(stack):
    # Two CPU-bound tasks: each takes most of a core, twice a worker's budget (see tests/live.py).
    check = AlertCheck("CeleryWorkerCpuHigh")
    ids = submit(task="process_data", count=2, timeout=120)
    try:
        alert = check.fire()
        assert alert["labels"]["worker"].startswith("celery_worker-")
    finally:
        for task_id in ids:
            celery_app.control.revoke(task_id, terminate=True)
    check.resolve()


def test_worker_memory_growing(stack):
    check = AlertCheck("CeleryWorkerMemoryGrowing")
    try:
        with SteadyLoad(1, task="process_task", timeout=0, memory_mb=4):
            check.fire()
    finally:
        # Give the memory back: restart the workers (warm shutdown, then `make up`).
        for i in range(1, STACK_WORKERS + 1):
            faults.process.stop(f"celery_worker-{i}")
        faults.restore_stack()
    check.resolve()


def test_worker_killed(stack):
    name = f"celery_worker-{STACK_WORKERS}"
    target = AlertCheck(
        "CeleryTargetDown", job="celery_worker", instance=f"127.0.0.1:{derive.worker_port(STACK_WORKERS)}"
    )
    online = [r["metric"]["worker"] for r in prom_query(f'flower_worker_online{{worker=~"{name}@.*"}} == 1')]
    assert online, "the worker is not online in Flower"
    down = AlertCheck("CeleryWorkerDown", worker=online[0])
    faults.kill_service(name)
    try:
        target.fire()
        down.fire()  # after Flower purges the silent worker from its metrics
    finally:
        faults.restore_stack()
    target.resolve()
    down.resolve()
    assert requests.get(f"{FLOWER}/api/workers?refresh=1", timeout=10).json().keys() >= {online[0]}


def test_exporter_stopped(stack):
    check = AlertCheck("CeleryTargetDown", job="celery_exporter")
    faults.process.stop("celery_exporter")
    try:
        check.fire()
    finally:
        faults.restore_stack()
    check.resolve()
