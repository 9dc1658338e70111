"""Flower's Prometheus metrics per worker (no series per task name on each worker), and its event
handling made cheaper.

Flower labels four of its metric families with both `worker` and `task`, so their series multiply:
workers x task names (x 4 event types, x 15 runtime buckets). At 1,000 workers and 1,000 task names
that is up to a million series per family, its /metrics grows to tens of MB and a scrape outlasts
Prometheus's timeout (docs/cardinality.md has the measurements). Flower has no option for it; this
module, run inside Flower's process by the bundle's Flower configuration (worker/flowerconfig.py; the
Helm chart mounts a copy as Flower's flowerconfig.py), replaces Flower's metrics object before Flower
creates it, keeping every name:

- flower_events_total{worker, type}: the task events Flower counted, per worker and event type (the
  task name is dropped: the celery-exporter counts per task name and queue);
- flower_task_prefetch_time_seconds{worker} and flower_worker_prefetched_tasks{worker}: per worker;
- flower_task_runtime_seconds: not exposed (the exporter has runtime per task, the workers' own
  histograms per task and queue);
- flower_worker_online{worker}, flower_worker_number_of_currently_executing_tasks{worker}: as Flower's.

A label that is absent matches `task=~".*"` and sums like before, so `sum by (worker, type)` reads
the same; only queries by Flower's task label change (the mixin's `cardinality.flower_task_series`
says which Flower it scrapes). install(per_task=True) keeps Flower's own metrics (small fleets:
PER_TASK_FLOWER_METRICS=1 in worker/flowerconfig.py; the chart's flower.perTaskMetrics). Either way
no `*_created` series are exposed (prometheus_client's one per counter and label set), Flower's
receiving thread hands its events to the IO loop in batches (batch_event_intake) rather than with a
wakeup per event, and its task list's search index is brought up to date when it is read rather than
on every event (index_on_search). The three halve Flower's CPU per event.

This file imports nothing else of the bundle: the chart embeds it as it is (mixin/chart.py).
"""

import collections
import functools
from logging import getLogger  # not `logging`: Flower reads that name in its config file as its option
import os

import prometheus_client
from prometheus_client import Counter, Gauge


class _ByWorker:
    """labels() with Flower's positional values cut to this metric's labels: Flower passes
    (worker, [type,] task), the task last. Flower asks on every task event, so the children are kept
    by their label values (a dict lookup instead of prometheus_client's checks and lock)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._children = {}

    def labels(self, *labelvalues, **labelkwargs):
        key = labelvalues[: len(self._labelnames)]
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = super().labels(*key)
        return child

    def remove(self, *labelvalues):
        self._children.clear()
        super().remove(*labelvalues)

    def clear(self):
        self._children.clear()
        super().clear()


class _Counter(_ByWorker, Counter):
    pass


class _Gauge(_ByWorker, Gauge):
    pass


class _NotExposed:
    """Takes Flower's observations and keeps none (no series, no memory per label set)."""

    _metrics = {}

    def labels(self, *labelvalues, **labelkwargs):
        return self

    def observe(self, value):
        pass


def per_worker_metrics(base, registry=prometheus_client.REGISTRY):
    """An instance of `base` (flower.events.PrometheusMetrics) whose families are labelled by worker
    only (module docstring), registered in `registry`; its methods are Flower's own."""
    metrics = base.__new__(base)
    metrics.events = _Counter(
        "flower_events_total", "Task events Flower counted, per worker and type", ["worker", "type"], registry=registry
    )
    metrics.runtime = _NotExposed()
    metrics.prefetch_time = _Gauge(
        "flower_task_prefetch_time_seconds",
        "Seconds the last task started at the worker waited there between received and started (0 once finished)",
        ["worker"],
        registry=registry,
    )
    metrics.number_of_prefetched_tasks = _Gauge(
        "flower_worker_prefetched_tasks",
        "Tasks received by the worker and not started yet",
        ["worker"],
        registry=registry,
    )
    metrics.worker_online = Gauge("flower_worker_online", "Worker online status", ["worker"], registry=registry)
    metrics.worker_number_of_currently_executing_tasks = Gauge(
        "flower_worker_number_of_currently_executing_tasks",
        "Number of tasks currently executing at a worker",
        ["worker"],
        registry=registry,
    )
    return metrics


def _hand_over_in_batches(self, event):
    """Flower's Events.on_event, batched: Flower's receiving thread hands every event to its IO loop
    with one add_callback, a cross-thread wakeup each, which cost Flower about a sixth of its CPU per
    event. Here the thread queues the event and asks for one callback while none is pending; that
    callback applies every queued event, in order, in the IO loop as Flower does."""
    queued = self.__dict__.get("_bundle_events")
    if queued is None:  # only this thread calls on_event
        queued = self._bundle_events = collections.deque()
    queued.append(event)
    if not self._bundle_apply_pending:
        self._bundle_apply_pending = True
        self.io_loop.add_callback(self._bundle_apply_events)


def _apply_queued_events(self):
    # Cleared before draining: an event queued meanwhile is either drained here or asks again.
    self._bundle_apply_pending = False
    queued = self._bundle_events
    while queued:
        event = queued.popleft()
        try:
            self.state.event(event)
        except Exception:  # one bad event must not hold back the rest (Flower's callbacks are isolated too)
            getLogger(__name__).exception("Flower could not apply the event %r", event.get("type"))


def batch_event_intake(events_cls):
    """Make flower.events.Events (`events_cls`) hand events to the IO loop in batches."""
    if events_cls.on_event is _hand_over_in_batches:
        return
    events_cls._bundle_apply_pending = False
    events_cls.on_event = _hand_over_in_batches
    events_cls._bundle_apply_events = _apply_queued_events


def _index_later(self, task, evicted):
    """EventsState._index_task, deferred: remember the task; the search index takes it in when the
    task list is next listed or searched (the engine's catch-up below)."""
    engine = self.search_engine
    if evicted is not None and evicted not in self.tasks:
        engine.remove(evicted)
    task_id = getattr(task, "uuid", None)
    if task_id:
        engine.__dict__.setdefault("_bundle_unindexed", {})[task_id] = task


def index_on_search(state_cls, engine_cls):
    """Flower re-indexes a task for its task list's search on every event of the task, parsing its
    arguments each time (a third of Flower's CPU per event). Here flower.events.EventsState
    (`state_cls`) only notes the task, and flower.utils.search.TaskSearchEngine (`engine_cls`)
    indexes the noted tasks when it lists or searches: the same index, built when it is read, once
    per task changed since the last listing. The state Flower persists holds no index (Flower
    rebuilds it on load), so nothing of this is saved."""
    if state_cls._index_task is _index_later:
        return
    upsert, remove, rebuild = engine_cls.upsert, engine_cls.remove, engine_cls.rebuild

    def catch_up(engine):
        for task in engine.__dict__.pop("_bundle_unindexed", {}).values():
            upsert(engine, task)

    def reading(method):
        @functools.wraps(method)
        def caught_up(engine, *args, **kwargs):
            catch_up(engine)
            return method(engine, *args, **kwargs)

        return caught_up

    def forget(engine, task_id):
        engine.__dict__.get("_bundle_unindexed", {}).pop(task_id, None)
        remove(engine, task_id)

    def rebuild_all(engine, tasks):
        engine.__dict__.pop("_bundle_unindexed", None)
        rebuild(engine, tasks)

    engine_cls.search = reading(engine_cls.search)
    engine_cls.matching_ids = reading(engine_cls.matching_ids)
    engine_cls.remove = forget
    engine_cls.rebuild = rebuild_all
    state_cls._index_task = _index_later


def per_task_wanted():
    """PER_TASK_FLOWER_METRICS=1 keeps Flower's own metrics (not a FLOWER_ variable: Flower refuses
    those it has no option for; the chart sets it from flower.perTaskMetrics)."""
    return os.environ.get("PER_TASK_FLOWER_METRICS", "0").strip().lower() in ("1", "true", "yes", "on")


def install(per_task=False):
    """In Flower's process, before Flower builds its state: no *_created series, events handed to
    the IO loop in batches, the task search index built when read, and (unless per_task) the
    per-worker metrics. True if the per-worker
    metrics are installed; False when Flower's own metrics stay (asked for, or Flower already created
    them in this process)."""
    disable = getattr(prometheus_client, "disable_created_metrics", None)
    if disable is not None:  # prometheus_client >= 0.17
        disable()
    import flower.events
    import flower.utils.search

    batch_event_intake(flower.events.Events)
    index_on_search(flower.events.EventsState, flower.utils.search.TaskSearchEngine)
    if per_task:
        return False
    if flower.events.PROMETHEUS_METRICS is not None:
        return isinstance(flower.events.PROMETHEUS_METRICS.runtime, _NotExposed)
    flower.events.PROMETHEUS_METRICS = per_worker_metrics(flower.events.PrometheusMetrics)
    return True
