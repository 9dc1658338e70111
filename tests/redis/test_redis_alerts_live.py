"""Alerts fire and resolve for real on the Redis-broker stack (fast profile): the success-rate alerts,
and the queue alerts, whose recording rule reads the broker's Redis queue list there (the `or` branch of
celery:queue_messages_ready:sum) instead of RabbitMQ's per-queue series.

Control commands and the purge go to the stack's Redis broker through an app of their own: this
process's worker.celery_app is configured from its environment, which may name RabbitMQ.
"""

import time

import pytest
from celery import Celery

from mixin.config import Config
from tests.alerting import AlertCheck
from tests.live import STACK_WORKERS, SteadyLoad, submit, task_state, wait_finished, wait_for
from tests.redis.conftest import REDIS_STACK_ENV, redis_broker_url
from worker import settings

REDIS_BROKER_JOB = Config().jobs.redis_broker

pytestmark = pytest.mark.stack
QUEUE = {"queue": "celery"}
POOL_PROCESSES = STACK_WORKERS * settings.WORKER_CONCURRENCY
# The longest task the stack accepts: long tasks run this long.
LONG_TASK_S = float(REDIS_STACK_ENV["MAX_TIMEOUT_SECONDS"])


@pytest.fixture(scope="module")
def broker(redis_stack):
    app = Celery("redis-broker-tests", broker=redis_broker_url())
    yield app
    app.close()


def redis_lengths(app):
    """(messages in the queue list, messages taken by a worker and not acknowledged)."""
    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        return client.llen("celery"), client.hlen("unacked")


def purge_queue(app):
    with app.connection_for_write() as conn:
        return conn.default_channel.queue_purge("celery")


def resolve_in_turn(checks, since):
    """Wait for each alert check to resolve, in turn: {alert name: seconds from `since` until then}."""
    resolved = {}
    for check in checks:
        check.resolve()
        resolved[check.name] = time.monotonic() - since
    return resolved


def test_success_rate_alerts_fire_and_resolve(redis_stack):
    overall = AlertCheck("CelerySuccessRateLow")
    per_task = AlertCheck("CeleryTaskSuccessRateLow", name="process_task")
    t0 = time.monotonic()
    with (
        SteadyLoad(3, task="process_task", timeout=0, fail_rate=1.0) as failing,
        SteadyLoad(3, task="process_task", timeout=0) as healthy,
    ):
        overall.fire()
        overall_fired = time.monotonic() - t0
        alert = per_task.fire()
        per_task_fired = time.monotonic() - t0
    t_end = time.monotonic()
    assert alert["labels"]["name"] == "process_task"
    assert failing.ids and healthy.ids
    assert not (failing.other or failing.unavailable or healthy.other or healthy.unavailable)
    # The injected fault really ran on the Redis-broker workers.
    assert {b["state"] for b in wait_finished(failing.ids[:5], 60).values()} == {"FAILURE"}
    resolved = resolve_in_turn((overall, per_task), t_end)
    overall_resolved, per_task_resolved = resolved[overall.name], resolved[per_task.name]
    print(
        f"Redis broker: CelerySuccessRateLow fault -> webhook {overall_fired:.1f}s "
        f"(bound {overall.timeout - 60:.0f}s), end -> resolved {overall_resolved:.1f}s; "
        f"CeleryTaskSuccessRateLow fault -> webhook {per_task_fired:.1f}s "
        f"(bound {per_task.timeout - 60:.0f}s), end -> resolved {per_task_resolved:.1f}s"
    )


def test_queue_backlog_and_growing_fire_and_resolve(redis_stack, broker):
    backlog = AlertCheck("CeleryQueueBacklog", **QUEUE)
    growing = AlertCheck("CeleryQueueGrowing", **QUEUE)
    assert redis_lengths(broker) == (0, 0), "the queue is not empty before the test"
    t0 = time.monotonic()
    # Occupy every pool process with the longest task allowed, with as many queued behind them, then
    # keep adding long tasks faster than the pool gets through them (POOL_PROCESSES per LONG_TASK_S):
    # the queue list grows by about 0.7 messages a second for as long as the load runs.
    assert POOL_PROCESSES / LONG_TASK_S < 0.5, "the load below would not outpace the pool"
    ids = submit(task="process_task", count=2 * POOL_PROCESSES, timeout=LONG_TASK_S)
    load = SteadyLoad(1, task="process_task", timeout=LONG_TASK_S)
    try:
        with load:
            fired = {}
            for check in (backlog, growing):
                alert = check.fire()
                fired[check.name] = time.monotonic() - t0
                # The Redis branch of the rule: the broker's queue list, labelled as a queue.
                assert alert["labels"]["job"] == REDIS_BROKER_JOB, alert["labels"]
            queued, unacked = redis_lengths(broker)
    finally:
        # Nothing of this test may run on afterwards: drop what is queued, stop what is running.
        purged = purge_queue(broker)
        ids += load.ids
        running = [i for i in ids if task_state(i)["state"] == "STARTED"]
        broker.control.revoke(ids, terminate=True)
    t_end = time.monotonic()
    assert not (load.other or load.unavailable), (load.other[:3], load.unavailable[:3])
    assert queued > 10 and purged >= queued, (queued, purged)
    assert 0 < unacked <= POOL_PROCESSES and 0 < len(running) <= POOL_PROCESSES, (unacked, running)
    resolved = resolve_in_turn((backlog, growing), t_end)
    backlog_resolved, growing_resolved = resolved[backlog.name], resolved[growing.name]
    print(
        f"Redis broker: {queued} queued, {unacked} unacknowledged at fire time, {purged} purged; "
        f"CeleryQueueBacklog fault -> webhook {fired['CeleryQueueBacklog']:.1f}s (bound {backlog.timeout - 60:.0f}s), "
        f"end -> resolved {backlog_resolved:.1f}s; CeleryQueueGrowing fault -> webhook "
        f"{fired['CeleryQueueGrowing']:.1f}s (bound {growing.timeout - 60:.0f}s), end -> resolved {growing_resolved:.1f}s"
    )
    # The running tasks were terminated through the Redis broker's control channel, acknowledged,
    # and nothing waits in `unacked` to be delivered again after the visibility timeout.
    wait_for(
        lambda: all(task_state(i)["state"] in ("REVOKED", "SUCCESS") for i in running),
        60,
        message="the running long tasks to be revoked",
    )
    assert any(task_state(i)["state"] == "REVOKED" for i in running)
    wait_for(lambda: redis_lengths(broker) == (0, 0), 30, message="an empty queue list and unacked hash")
