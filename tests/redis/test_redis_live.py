"""The core end-to-end checks against a Redis-broker stack (BROKER=redis make up, 3 workers)."""

import json
import signal
import threading
import time

import pytest
import redis
import requests
from celery import Celery
from kombu.exceptions import OperationalError

from mixin.config import Config
from native import paths, process
from tests import faults
from tests.live import (
    APP,
    FLOWER,
    STACK_WORKERS,
    flower_task,
    prom_query,
    prom_scalar,
    settled,
    submit,
    task_state,
    wait_finished,
    wait_for,
)
from tests.redis.conftest import VISIBILITY_TIMEOUT, redis_broker_url, redis_up

JOBS = Config().jobs.model_dump()
REDIS_BROKER_JOB = JOBS["redis_broker"]

pytestmark = pytest.mark.stack


def test_every_target_up_with_the_redis_exporter_instead_of_rabbitmq(redis_stack):
    want = set(JOBS.values()) - {JOBS["rabbitmq"], JOBS["rabbitmq_queues"]} | {REDIS_BROKER_JOB}

    def all_up():
        result = prom_query("up")
        return {r["metric"]["job"] for r in result} == want and all(r["value"][1] == "1" for r in result) and result

    result = wait_for(all_up, 90, message=f"every target of {sorted(want)} up == 1")
    assert len([r for r in result if r["metric"]["job"] == JOBS["worker"]]) == STACK_WORKERS
    # The broker really is Redis: the exporter sees Celery's queue list key.
    wait_for(lambda: prom_query(f'redis_up{{job="{REDIS_BROKER_JOB}"}} == 1'), 30, message="redis_up")


def test_guide_scenario_2_over_3_workers_counts_every_task_exactly(redis_stack):
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

    # The guide's scenario 2: 20 tasks with timeout=10, spread over the 3 workers (2 processes each).
    t0 = time.monotonic()
    ids = submit(task="process_task", count=20, timeout=10, task_num_start=1)
    # The queue list in the broker holds what no worker took yet, as the redis_exporter reports it.
    depth = f'redis_key_size{{job="{REDIS_BROKER_JOB}",key="celery"}}'
    unacked = f'redis_key_size{{job="{REDIS_BROKER_JOB}",key="unacked"}}'
    wait_for(
        lambda: prom_scalar(depth) > 0 and prom_scalar(unacked) > 0,
        20,
        message="queue depth and unacked messages on the Redis broker",
    )
    done = wait_finished(ids, 180)
    elapsed = time.monotonic() - t0
    assert {b["state"] for b in done.values()} == {"SUCCESS"}
    assert sorted(b["result"]["task_num"] for b in done.values()) == list(range(1, 21))
    # 20 tasks of 10 s on 6 processes: 4 rounds, so about 40 s, not 200 s on one.
    assert elapsed < 100, f"20 tasks took {elapsed:.0f}s"
    print(f"scenario 2 on Redis: 20 x 10 s tasks on 3 workers in {elapsed:.1f}s")

    workers = requests.get(f"{FLOWER}/api/workers?refresh=1", timeout=10).json()
    assert len(workers) == STACK_WORKERS
    ran = {name: sum(w["stats"]["total"].values()) - totals_before.get(name, 0) for name, w in workers.items()}
    assert sum(ran.values()) == 20 and all(n > 0 for n in ran.values()), ran
    for query in (succeeded, flower_ok, flower_received):
        wait_for(lambda: prom_scalar(query) - before[query] == 20, 60, message=f"{query} to grow by 20")
    after = settled(succeeded, flower_ok, flower_received, quiet=6)
    assert {q: after[q] - before[q] for q in after} == {q: 20 for q in after}
    wait_for(lambda: prom_scalar(depth) == 0 and prom_scalar(unacked) == 0, 30, message="empty queue and unacked")


def test_worker_sigkill_mid_task_redelivers_it_after_the_visibility_timeout(redis_stack):
    [task_id] = submit(task="process_task", count=1, timeout=8, task_num_start=888)

    def running_on():
        info = flower_task(task_id)
        return info.get("state") == "STARTED" and info.get("worker")

    worker = wait_for(running_on, 30, message="the task to start")
    faults.kill_service(worker.split("@")[0])
    t_kill = time.monotonic()

    def restarted():
        info = flower_task(task_id)
        return info.get("worker") not in (None, worker) and info.get("state") in ("STARTED", "SUCCESS")

    try:
        wait_for(restarted, VISIBILITY_TIMEOUT + 60, interval=0.5, message="the task redelivered to another worker")
        redelivered = time.monotonic() - t_kill
        body = wait_finished([task_id], 60)[task_id]
        assert body["state"] == "SUCCESS" and body["result"]["task_num"] == 888
        print(
            f"SIGKILL redelivery on Redis: started again on another worker {redelivered:.1f}s after the kill "
            f"(visibility_timeout {VISIBILITY_TIMEOUT}s)"
        )
        # Not before the visibility timeout (the message sat in `unacked`), and not much after.
        assert VISIBILITY_TIMEOUT - 9 <= redelivered <= VISIBILITY_TIMEOUT + 25, redelivered
    finally:
        redis_up()


class Submitter(threading.Thread):
    def __init__(self, interval=0.1):
        super().__init__(daemon=True)
        self.interval, self.accepted, self.unavailable, self.other = interval, [], [], []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                r = requests.post(f"{APP}/api/tasks", json={"count": 1, "timeout": 0.1}, timeout=30)
            except requests.RequestException as exc:
                self.other.append(repr(exc))
            else:
                (
                    self.accepted.extend(r.json()["task_ids"])
                    if r.status_code == 202
                    else self.unavailable.append(r.json())
                    if r.status_code == 503
                    else self.other.append((r.status_code, r.text[:200]))
                )
            self.done.wait(self.interval)


def where_are(ids):
    """Where the unfinished tasks among ids are: their state, and the broker's keys that hold them."""
    client = redis.Redis.from_url(redis_broker_url())
    log = (paths.LOGS / "redis-broker.log").read_text(errors="replace")
    unfinished = {i: task_state(i)["state"] for i in ids}
    unfinished = {i: s for i, s in unfinished.items() if s not in ("SUCCESS", "FAILURE", "REVOKED")}
    queued = {json.loads(m)["headers"]["id"] for m in client.lrange("celery", 0, -1)}
    unacked = {json.loads(m)[0]["headers"]["id"] for m in client.hvals("unacked")}
    return (
        f"{len(unfinished)} unfinished: "
        + ", ".join(f"{i} {s} queued={i in queued} unacked={i in unacked}" for i, s in list(unfinished.items())[:10])
        + f"; broker: {client.llen('celery')} queued, {client.hlen('unacked')} unacked, "
        f"unacked_mutex ttl {client.ttl('unacked_mutex')} s; the broker's log on its file: "
        + "; ".join(line for line in log.splitlines() if "fsync" in line.lower())[-600:]
    )


def consume(control_app, on):
    """Every worker of the stack starts (on) or stops consuming the queue, once each has answered:
    a worker that is still reconnecting to the broker misses a broadcast, so it is sent again."""
    command = control_app.control.add_consumer if on else control_app.control.cancel_consumer

    def every_worker_answered():
        try:
            return len(command("celery", reply=True, timeout=2) or ()) >= STACK_WORKERS
        except (OSError, OperationalError, redis.RedisError):  # the broker is still starting
            return False

    wait_for(every_worker_answered, 90, 1, message=f"{STACK_WORKERS} workers to answer {command.__name__}")


@pytest.mark.heavy
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["shutdown", "sigkill"])
def test_redis_broker_restart_under_load_loses_no_accepted_task(redis_stack, sig):
    """The broker's Redis keeps an append-only file, fsynced before it replies: a restart (clean or
    SIGKILL) loses no task that the app accepted with 202. The workers stop taking tasks meanwhile:
    kombu's Redis transport records a message it took as unacknowledged in a second command, and a
    message taken in the instant Redis dies is lost (docs/redis.md)."""
    pid = process.running_pid("redis-broker")
    assert pid, "the Redis broker is not ours (BROKER_URL points elsewhere): cannot restart it"
    control_app = Celery("redis-broker-control", broker=redis_broker_url())
    load = Submitter()
    load.start()
    try:
        time.sleep(5)
        consume(control_app, on=False)
        time.sleep(2)  # a take already under way (BRPOP waits up to 1 s) ends
        process.stop("redis-broker") if sig == signal.SIGTERM else faults.kill_service("redis-broker")
        t_down = time.monotonic()
        time.sleep(5)
        redis_up()
        down_for = time.monotonic() - t_down
        consume(control_app, on=True)
        time.sleep(10)
    finally:
        load.done.set()
        control_app.close()
    load.join(60)
    assert not load.other, load.other[:3]
    try:
        done = wait_finished(load.accepted, 240)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{where_are(load.accepted)}") from None
    lost = [i for i, b in done.items() if b["state"] != "SUCCESS"]
    print(
        f"Redis broker {sig.name}: down {down_for:.1f}s, {len(load.accepted)} accepted (202), "
        f"{len(load.unavailable)} refused (503), {len(lost)} not successful"
    )
    assert lost == []
    assert load.unavailable, "no request was refused while the broker was down"


def test_every_redis_broker_dashboard_panel_returns_data(redis_stack):
    from tests.dashboard_queries import empty_by_design, iter_panel_queries, load_dashboards

    [dashboard] = [d for d in load_dashboards() if d["uid"] == "redis-broker"]
    # A queued and an unacknowledged message, so that every panel has something to show.
    ids = submit(task="process_task", count=8, timeout=6)
    wait_for(
        lambda: (
            prom_scalar(f'sum(redis_key_size{{job="{REDIS_BROKER_JOB}",key="celery"}})') > 0
            and prom_scalar(f'sum(redis_key_size{{job="{REDIS_BROKER_JOB}",key="unacked"}})') > 0
        ),
        30,
        message="queued and unacked messages",
    )
    empty, missing = empty_by_design(dashboard), []
    for _, panel, expr in iter_panel_queries(dashboard, {"__rate_interval": "1m"}):
        if panel not in empty and not prom_query(expr):
            missing.append(f"{panel}: {expr}")
    wait_finished(ids, 120)
    assert not missing, "panels without data:\n" + "\n".join(missing)
