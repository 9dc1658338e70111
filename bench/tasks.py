"""The bench's Celery app: the bundle's own app and settings (worker/celery_app.py), on the bench vhost.

The orchestrator points RMQ_URL at the `bench` vhost, so this is the bundle's configuration exactly
(acks_late, prefetch 1, event TTL 60 s, concurrency, worker metrics hook) with three bench changes:
- no result backend: the bench tasks ignore results, and the running stack's Redis (its result
  backend) must not be touched;
- BENCH_EVENTS=0 turns task events off (the "bare" and baseline configurations);
- BENCH_CONF (JSON) overrides settings for tuning experiments (e.g. {"worker_prefetch_multiplier": 4});
- BENCH_OFF_THE_SHELF=1 gives the worker Celery's own event dispatcher (worker/events.py's is the
  bundle's).
Completion is counted by a task_postrun handler in shared memory (bench/counter.py). With
BENCH_TIMELINE=FILE every worker also appends when it was ready and when each task was received
(prefetched), started and finished, with its node and pool process (bench/timeline.py reads it).
"""

import json
import os
import time

from celery import signals

from bench import counter
from worker.celery_app import app

app.conf.result_backend = None
# The bench vhost, from the environment the orchestrator set: worker.settings may have been imported
# (and read the broker URL) before it did.
app.conf.broker_url = os.environ.get("BROKER_URL") or os.environ["RMQ_URL"]
if os.environ.get("BENCH_EVENTS", "1") == "0":
    app.conf.worker_send_task_events = False
    app.conf.task_send_sent_event = False
app.conf.update(json.loads(os.environ.get("BENCH_CONF") or "{}"))
if os.environ.get("BENCH_OFF_THE_SHELF") == "1":
    # Celery's own event dispatcher: no queue in task-received, a flush at every loop turn.
    app.events_cls = "celery.app.events:Events"


class BenchFault(Exception):
    """Raised by maybe_fail(True): the fault of the alert-latency section."""


@app.task(name="bench.add", ignore_result=True)
def add(x, y):
    return x + y


@app.task(name="bench.cpu10", ignore_result=True)
def cpu10():
    # 10 ms of this thread's CPU time, not wall time: under contention every configuration does the
    # same work per task.
    end = time.thread_time() + 0.010
    while time.thread_time() < end:
        pass


@app.task(name="bench.sleep", ignore_result=True)
def sleep(seconds):
    # A long task that holds its pool process without using the CPU.
    time.sleep(seconds)


@app.task(name="bench.maybe_fail", ignore_result=True)
def maybe_fail(fail):
    if fail:
        raise BenchFault("failing on purpose")


def _named(name):
    @app.task(name=name, ignore_result=True)
    def trivial(x, y):
        return x + y

    return trivial


# BENCH_NAMES copies of the trivial task (bench.t000, ...): the memory section's task-name cardinality.
NAMED = [_named(f"bench.t{i:03d}") for i in range(int(os.environ.get("BENCH_NAMES", "0")))]

_writer = counter.Writer(os.environ["BENCH_COUNTER"]) if os.environ.get("BENCH_COUNTER") else None


_TIMELINE = os.environ.get("BENCH_TIMELINE")


def _record(**fields):
    # One short line per write on an O_APPEND file: lines of several processes never interleave.
    if _TIMELINE:
        line = json.dumps({"t": time.time(), "pid": os.getpid(), **fields}) + "\n"
        fd = os.open(_TIMELINE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


@signals.worker_ready.connect
def _ready(sender=None, **_):
    _record(event="ready", worker=sender.hostname)


@signals.task_received.connect
def _received(request=None, **_):
    _record(event="received", worker=request.hostname, id=request.id)


@signals.task_prerun.connect
def _started(task_id=None, task=None, **_):
    _record(event="started", worker=task.request.hostname, id=task_id)


@signals.task_postrun.connect
def _count(task_id=None, **_):
    if _writer is not None:
        _writer.increment(time.time())
    _record(event="finished", id=task_id)
