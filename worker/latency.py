"""Task latency by stage, measured by each worker in its main process and served on its own /metrics.

Per worker (full nodename, as on the other worker metrics), task name and queue:

- celery_worker_task_queue_wait_seconds (histogram): published -> started, where started is the
  moment the pool took the task, i.e. when the worker sends task-started. For a task with an ETA or
  countdown it counts from when the task was due: max(published_at, eta).
- celery_worker_task_prefetch_wait_seconds (histogram): received by this worker (message delivered,
  i.e. prefetched) -> started: the time a task waited inside the worker for a free pool slot, which
  the broker's queue depth does not show. An ETA task counts from max(received, eta).
- celery_worker_task_runtime_seconds (histogram): started -> finished, whatever the outcome (success,
  failure, retry, rejection, time limit, lost pool process).
- celery_worker_task_queue_wait_unknown_total (counter): tasks started whose message carried no
  usable publish time (no `published_at` header: a client that does not import worker.celery_app, an
  older client, `celery call` from another code base). Their queue wait is not observed (it is not
  known); they are counted here instead, in the same labels, and still observed in prefetch wait and
  runtime. So queue_wait_count + queue_wait_unknown_total = tasks started, and a rising unknown
  share means some publisher is not stamping its messages.

Labels: `worker` is the full nodename; `task` the task's name as Celery's events carry it (the
shadow name, if the publisher set one); `queue` as below. With WORKER_LATENCY_METRICS=per_queue the
`task` label is left out: a fleet's series then grow with its queues, not with its task names.

Series per worker: 3 histograms x (B + 3) (B bucket bounds, plus +Inf, _sum and _count) + 1 unknown
counter for each (task, queue) pair the worker ran, or each queue with per_queue: 64 with the
default 18 bounds (docs/cardinality.md has the fleet's formula). No `*_created` series
(worker/metrics.py turns them off).

Publish time: every process that imports worker.celery_app (the web app, the loadtest, the bench, the
workers when they retry) sets the message header `published_at` (Unix time, float seconds, the
publisher's wall clock) in Celery's before_task_publish signal, always overwriting an earlier value
(a retry is a new publish), and the AMQP `timestamp` property (whole seconds) unless one is set,
which lets RabbitMQ show the age of the message at the head of a queue. A message delivered again
(its worker was lost before acknowledging it) keeps its publish time: its queue wait then includes
the lost attempt.

Where and with which clock each time is taken (Celery 5.7, celery/worker/request.py and strategy.py):

- received: TimedRequest.__init__, run by the worker's consumer (main process) when the broker
  delivers the message; time.monotonic().
- started: Request.on_accepted(pid, time_accepted), called in the main process when the pool reports
  the task accepted; time_accepted is time.monotonic() taken in the pool process (CLOCK_MONOTONIC is
  host-wide on Linux; Celery relies on that too). Celery converts it to wall clock as time_start.
- queue wait compares two wall clocks: time_start (worker) with published_at (publisher). Clock skew
  between hosts shifts it by the skew; a negative result (publisher's clock ahead) is recorded as 0.
- prefetch wait: monotonic start - monotonic received (the ETA converted to monotonic at start).
- runtime: the runtime the pool reports with a success (measured in the pool process, the value the
  task-succeeded event carries, i.e. what Flower and the exporter show); for anything else, the
  main process's monotonic clock since started.

Hooks: Celery builds its request class per task on top of the one named by Task.Request
(create_request_cls), and that subclass replaces on_success without calling the base's; so
TimedRequest wraps whatever on_success such a subclass defines (__init_subclass__). on_accepted and
on_failure are not replaced there. All of these run in the main process, which owns the registry
(worker/metrics.py); pool processes (prefork children) never touch it.

Queue label: the queue the message came from, found from its routing key among the queues this
worker consumes (their names and binding keys); if the worker consumes exactly one queue, that one;
otherwise "unknown". Never the raw routing key, so a topic exchange cannot create a series per key.
On Redis, kombu keeps the publish's exchange and routing key in the message, and Celery publishes
to a queue through the default exchange with the queue's name as routing key, so the same applies.

Settings (worker/settings.py), checked when a worker starts: TASK_LATENCY_BUCKETS (default
settings.DEFAULT_TASK_LATENCY_BUCKETS, 5 ms to 1 h), WORKER_LATENCY_METRICS=per_queue to leave the
task label out (set the mixin's cardinality.worker_latency_by_task to false to match) and
WORKER_LATENCY_METRICS=0 to turn the measurement off (the worker then uses Celery's own Request class; clients still set the header;
WORKER_METRICS=0, no /metrics at all, turns it off too). A bad value stops the worker with one line
naming the variable and the value.
"""

import functools
import logging
import math
import os
from time import monotonic, time

from celery import signals
from celery.worker.request import Request
from prometheus_client import Counter, Histogram

from worker import settings

log = logging.getLogger(__name__)

HEADER = "published_at"
LABELS = ("worker", "task", "queue")
LABELS_PER_QUEUE = ("worker", "queue")
UNKNOWN_QUEUE = "unknown"

# The worker's measurements; None until a worker started with the measurement on.
METRICS = None


# --- Publishing side ---------------------------------------------------------------------------------


@signals.before_task_publish.connect(weak=False, dispatch_uid="worker.latency.stamp_publish_time")
def stamp_publish_time(headers=None, properties=None, **_):
    """Record the publish time in the message (every publish, in every client of the app)."""
    now = time()
    if headers is not None:
        headers[HEADER] = now
    if properties is not None:
        # AMQP timestamp: 64-bit whole seconds (py-amqp packs an int; a float would fail).
        properties.setdefault("timestamp", int(now))


# --- Pure logic (unit-tested) ------------------------------------------------------------------------


def publish_time(headers):
    """The message's publish time (Unix seconds), or None if the header is missing or not a usable
    number (a client that does not stamp it, or something else under that name)."""
    value = headers.get(HEADER) if headers else None
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def queue_wait(published_at, eta, started):
    """Seconds from when the task was due (publish time, or its ETA if later) to its start, all
    wall-clock Unix seconds; None if the publish time is unknown. Never negative (clock skew)."""
    if published_at is None:
        return None
    due = published_at if eta is None else max(published_at, eta)
    return max(0.0, started - due)


def prefetch_wait(received, started, eta_monotonic=None):
    """Seconds from when the worker had the task and it was due (received, or its ETA if later) to
    its start, all on the monotonic clock. Never negative (an ETA timer firing a little early)."""
    due = received if eta_monotonic is None else max(received, eta_monotonic)
    return max(0.0, started - due)


class QueueLabels:
    """The `queue` label of a message from its routing key, bounded by the queues the worker
    consumes (see the module docstring). Recomputed when the set of consumed queues changes
    (add_consumer / cancel_consumer)."""

    def __init__(self):
        self._consumed, self._size, self._labels = None, 0, {}

    def __call__(self, consume_from, routing_key):
        if consume_from is not self._consumed or len(consume_from) != self._size:
            self._consumed, self._size, self._labels = consume_from, len(consume_from), {}
        try:
            return self._labels[routing_key]
        except KeyError:
            label = self._labels[routing_key] = self._resolve(consume_from, routing_key)
            return label

    @staticmethod
    def _resolve(consume_from, routing_key):
        if routing_key in consume_from:
            return routing_key
        for name, queue in consume_from.items():
            if routing_key and getattr(queue, "routing_key", None) == routing_key:
                return name
        if len(consume_from) == 1:
            return next(iter(consume_from))
        return UNKNOWN_QUEUE


# --- Metrics ----------------------------------------------------------------------------------------


class Series:
    """The histogram children of one (worker, task, queue), looked up once."""

    __slots__ = ("queue_wait", "queue_wait_unknown", "prefetch_wait", "runtime")

    def __init__(self, metrics, labels):
        self.queue_wait = metrics.queue_wait.labels(*labels)
        self.queue_wait_unknown = metrics.queue_wait_unknown.labels(*labels)
        self.prefetch_wait = metrics.prefetch_wait.labels(*labels)
        self.runtime = metrics.runtime.labels(*labels)


class LatencyMetrics:
    """The three histograms and the unknown-publish-time counter, unregistered until
    register(registry) (worker/metrics.py does it with the worker's /metrics registry). by_task:
    labelled by task name as well as queue (WORKER_LATENCY_METRICS=per_queue: not)."""

    def __init__(self, buckets=settings.DEFAULT_TASK_LATENCY_BUCKETS, by_task=True):
        self.by_task = by_task
        labels = LABELS if by_task else LABELS_PER_QUEUE
        self.queue_wait = Histogram(
            "celery_worker_task_queue_wait_seconds",
            "Seconds from publish (or the ETA, if later) to the start of the task on this worker",
            labels,
            buckets=buckets,
            registry=None,
        )
        self.prefetch_wait = Histogram(
            "celery_worker_task_prefetch_wait_seconds",
            "Seconds from the worker receiving the task (or its ETA, if later) to its start: waiting "
            "for a pool slot inside the worker",
            labels,
            buckets=buckets,
            registry=None,
        )
        self.runtime = Histogram(
            "celery_worker_task_runtime_seconds",
            "Seconds from the start of the task to its end, whatever the outcome",
            labels,
            buckets=buckets,
            registry=None,
        )
        self.queue_wait_unknown = Counter(
            "celery_worker_task_queue_wait_unknown",
            "Tasks started whose message had no publish time (no published_at header): queue wait not observed",
            labels,
            registry=None,
        )
        self._series = {}

    def collectors(self):
        return self.queue_wait, self.queue_wait_unknown, self.prefetch_wait, self.runtime

    def register(self, registry):
        for collector in self.collectors():
            registry.register(collector)

    def series(self, worker, task, queue):
        key = (worker, task, queue) if self.by_task else (worker, queue)
        found = self._series.get(key)
        if found is None:
            # Two threads may build the same entry; labels() returns the same children, so no harm.
            found = self._series[key] = Series(self, key)
        return found

    def started(self, series, published_at, eta, start_wall, start_mono, received_mono):
        """Observe queue wait (or count it unknown) and prefetch wait of a task that just started.
        eta: Unix seconds or None."""
        eta_mono = None if eta is None else start_mono - (start_wall - eta)
        waited = queue_wait(published_at, eta, start_wall)
        if waited is None:
            series.queue_wait_unknown.inc()
        else:
            series.queue_wait.observe(waited)
        series.prefetch_wait.observe(prefetch_wait(received_mono, start_mono, eta_mono))


# --- Worker side ---------------------------------------------------------------------------------

_queue_labels = QueueLabels()
_warned = False


def _measurement_failed():
    # A bug here must never break running tasks: say it once, with the traceback, and go on.
    global _warned
    if not _warned:
        _warned = True
        log.warning("task latency measurement failed (reported once; tasks are unaffected)", exc_info=True)


def _timed_on_success(on_success):
    @functools.wraps(on_success)
    def on_success_timed(self, failed__retval__runtime, **kwargs):
        self._latency_finished(failed__retval__runtime[2])
        return on_success(self, failed__retval__runtime, **kwargs)

    on_success_timed._latency_timed = True
    return on_success_timed


class TimedRequest(Request):
    """Celery's worker Request, measuring the stages of its task (module docstring). Installed by
    the worker at start (install()) as the Task.Request of the app."""

    _latency_series = None  # set when the task started
    _latency_started = None  # monotonic start
    _latency_done = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # create_request_cls() defines its own on_success that does not call ours: wrap it.
        own = cls.__dict__.get("on_success")
        if own is not None and not getattr(own, "_latency_timed", False):
            cls.on_success = _timed_on_success(own)

    def __init__(self, *args, **kwargs):
        self._latency_received = monotonic()
        super().__init__(*args, **kwargs)

    def on_accepted(self, pid, time_accepted):
        super().on_accepted(pid, time_accepted)
        metrics = METRICS
        if metrics is None:
            return
        try:
            self._latency_started = time_accepted
            delivery_info = self._delivery_info
            queue = _queue_labels(self._app.amqp.queues.consume_from, delivery_info.get("routing_key"))
            series = self._latency_series = metrics.series(self._hostname, self.name, queue)
            eta = self._eta
            metrics.started(
                series,
                publish_time(self._request_dict),
                eta and eta.timestamp(),
                self.time_start,
                time_accepted,
                self._latency_received,
            )
        except Exception:
            _measurement_failed()

    def _latency_finished(self, runtime=None):
        series = self._latency_series
        if series is None or self._latency_done:
            return  # never started (or not measured), or already counted
        self._latency_done = True
        try:
            series.runtime.observe(runtime if runtime is not None else monotonic() - self._latency_started)
        except Exception:
            _measurement_failed()

    def on_success(self, failed__retval__runtime, **kwargs):
        self._latency_finished(failed__retval__runtime[2])
        return super().on_success(failed__retval__runtime, **kwargs)

    on_success._latency_timed = True

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        self._latency_finished()
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


def install(app, buckets, by_task=True):
    """Measure in this worker: every task of `app` uses TimedRequest; metrics with `buckets`, by
    task name and queue (by_task) or by queue only."""
    global METRICS
    METRICS = LatencyMetrics(buckets, by_task)
    app.Task.Request = f"{__name__}:TimedRequest"
    return METRICS


def register(registry):
    """Add the worker's latency metrics to its /metrics registry (nothing if not measuring)."""
    if METRICS is not None:
        METRICS.register(registry)


@signals.celeryd_init.connect(weak=False, dispatch_uid="worker.latency.configure_worker")
def _configure_worker(sender=None, instance=None, **_):
    # celeryd_init: the worker's main process, before its consumer builds the per-task request
    # classes, and only in `celery worker` (not in the app, Flower or other clients).
    try:
        enabled = settings.worker_latency_metrics()
        by_task = settings.worker_latency_by_task()
        buckets = settings.task_latency_buckets()
    except ValueError as exc:
        raise SystemExit(f"celery worker: {exc}") from None
    # Nothing would serve the measurements without the worker's /metrics (worker/metrics.py).
    if enabled and os.environ.get("WORKER_METRICS", "1") != "0":
        install(instance.app, buckets, by_task)
