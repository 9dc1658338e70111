"""Flower's Prometheus metrics per worker: no series per task name on each worker.

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
no `*_created` series are exposed (prometheus_client's one per counter and label set).

This file imports nothing else of the bundle: the chart embeds it as it is (mixin/chart.py).
"""

import prometheus_client
from prometheus_client import Counter, Gauge


class _ByWorker:
    """labels() with Flower's positional values cut to this metric's labels: Flower passes
    (worker, [type,] task), the task last."""

    def labels(self, *labelvalues, **labelkwargs):
        return super().labels(*labelvalues[: len(self._labelnames)])


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


def install(per_task=False):
    """In Flower's process, before Flower builds its state: no *_created series, and (unless
    per_task) the per-worker metrics. True if they are installed; False when Flower's own metrics
    stay (asked for, or Flower already created them in this process)."""
    disable = getattr(prometheus_client, "disable_created_metrics", None)
    if disable is not None:  # prometheus_client >= 0.17
        disable()
    if per_task:
        return False
    import flower.events

    if flower.events.PROMETHEUS_METRICS is not None:
        return isinstance(flower.events.PROMETHEUS_METRICS.runtime, _NotExposed)
    flower.events.PROMETHEUS_METRICS = per_worker_metrics(flower.events.PrometheusMetrics)
    return True
