"""The recording rules' names, and expressions over them: what the alerts, the SLO rules and the
dashboards read instead of the raw, high-cardinality series.

Each record keeps the labels of the source it aggregates (the deployment's scope and `job`), so a
selector of that source (Queries.sel) matches it, and a dashboard's job and scope variables apply.

- per task (scope, job, name, queue_name), over thresholds.success_window: the celery-exporter's
  counters, each rated once; the finished rate and the ratios are computed from these records, not
  from the raw series again; the runtime p95 (the alert's) from the raw histogram, in a group
  evaluated every cardinality.runtime_evaluation_interval (runtime_records);
- per queue (scope, job, queue_name), over the same window: sums of the per-task records (and of the
  received counter, the runtime's sum and count, failures by exception) for the Overview;
- the workers' latency histograms per (scope, job, queue[, task], le), over thresholds.queue_wait_window:
  every worker's series summed away, for the Latency dashboard, the queue-wait alert and the Overview;
- Flower's task events per worker, when the Config keeps Flower's per-task series (flower_task_series).

Rules of one group run in order, each seeing the records written before it in the same evaluation,
so a record may read one listed above it.
"""

from mixin.config import Config
from mixin.queries import PROCESSED, Queries

TASK_SUCCEEDED = "celery:task_succeeded:rate"
TASK_FAILED = "celery:task_failed:rate"
TASK_FINISHED = "celery:task_finished:rate"
TASK_SUCCESS_RATIO = "celery:task_success:ratio"
SUCCESS_RATIO = "celery:success:ratio"
THROUGHPUT = "celery:throughput:rate"

QUEUE_SUCCEEDED = "celery:queue_task_succeeded:rate"
QUEUE_FINISHED = "celery:queue_task_finished:rate"
QUEUE_RECEIVED = "celery:queue_task_received:rate"
QUEUE_FAILED_BY_EXCEPTION = "celery:queue_task_failed_by_exception:rate"
QUEUE_RUNTIME_BUCKETS = "celery:queue_task_runtime_seconds_bucket:rate"
QUEUE_RUNTIME_SUM = "celery:queue_task_runtime_seconds_sum:rate"
QUEUE_RUNTIME_COUNT = "celery:queue_task_runtime_seconds_count:rate"

STAGES = ("queue_wait", "prefetch_wait", "runtime")
QUEUE_WAIT_UNKNOWN = "celery:worker_task_queue_wait_unknown:rate"
QUEUE_WAIT_P95 = "celery:queue_wait_seconds:p95"
WORKER_CPU = "celery:worker_cpu_utilisation:ratio"
EVENTS_LOST = "celery:monitor_events_lost:ratio"
FLOWER_WORKER_EVENTS = "celery:flower_worker_task_events:rate"


def stage_buckets(stage):
    """The record of one latency stage's bucket rates (worker/latency.py's histograms)."""
    return f"celery:worker_task_{stage}_seconds_bucket:rate"


def either(a, b):
    """a + b where both exist, else whichever does (a task with only one of the two series)."""
    return f"({a} + {b}\nor {a}\nor {b})"


def ratio_or_zero(part, whole):
    """part / whole, 0 where whole exists without part."""
    return f"({part}\nor {whole} * 0)\n/ {whole}"


def _sum(by, expr):
    return f"sum by ({by}) ({expr})" if by else f"sum({expr})"


class Recorded:
    """Expressions over the records, with the selectors of a Queries (plain, or a dashboard's with
    its template variables)."""

    def __init__(self, q: Queries):
        self.q, self.cfg = q, q.cfg

    def series(self, record, source, *matchers):
        return f"{record}{self.q.sel(source, *matchers)}"

    @property
    def stage_labels(self):
        """The labels a latency record keeps besides the deployment: queue, and task when measured."""
        return "queue, task" if self.cfg.cardinality.worker_latency_by_task else "queue"

    # --- tasks, by queue (the Overview) ---------------------------------------------------------

    def finished_rate(self, *matchers, by=""):
        return _sum(by, self.series(QUEUE_FINISHED, "exporter", *matchers))

    def success_ratio(self, *matchers, by=""):
        succeeded = _sum(by, self.series(QUEUE_SUCCEEDED, "exporter", *matchers))
        return ratio_or_zero(succeeded, self.finished_rate(*matchers, by=by))

    def runtime_quantile(self, quantile, *matchers, by=""):
        grouping = ", ".join(filter(None, [by, "le"]))
        buckets = self.series(QUEUE_RUNTIME_BUCKETS, "exporter", *matchers)
        return f"histogram_quantile({quantile}, sum by ({grouping}) ({buckets}))"

    def over_range(self, record, window, *matchers, by=""):
        """A per-queue rate record averaged over a window (a dashboard's range)."""
        return _sum(by, f"avg_over_time({self.series(record, 'exporter', *matchers)}[{window}])")

    def count_in_range(self, record, window, seconds, *matchers, by=""):
        """Events in the window: the record's average rate times the window's length in seconds."""
        return f"{self.over_range(record, window, *matchers, by=by)} * {seconds}"

    def success_ratio_in_range(self, window, *matchers):
        succeeded = self.over_range(QUEUE_SUCCEEDED, window, *matchers)
        return ratio_or_zero(succeeded, self.over_range(QUEUE_FINISHED, window, *matchers))

    def mean_runtime_in_range(self, window, *matchers):
        total = self.over_range(QUEUE_RUNTIME_SUM, window, *matchers)
        return f"{total}\n/ {self.over_range(QUEUE_RUNTIME_COUNT, window, *matchers)}"

    # --- the workers' latency histograms ----------------------------------------------------------

    def stage_quantile(self, stage, quantile, *matchers, by="queue"):
        grouping = ", ".join(filter(None, [by, "le"]))
        buckets = self.series(stage_buckets(stage), "worker", *matchers)
        return f"histogram_quantile({quantile}, sum by ({grouping}) ({buckets}))"

    def stage_heatmap(self, stage, *matchers):
        return f"sum by (le) ({self.series(stage_buckets(stage), 'worker', *matchers)})"

    def unknown_publish_time_share(self, *matchers, by=""):
        unknown = _sum(by, self.series(QUEUE_WAIT_UNKNOWN, "worker", *matchers))
        started = _sum(by, self.series(stage_buckets("prefetch_wait"), "worker", 'le="+Inf"', *matchers))
        return f"{unknown}\n/ {started}"

    # --- workers --------------------------------------------------------------------------------

    def worker_cpu_ratio(self, *matchers):
        return self.series(WORKER_CPU, "worker", *matchers)

    def flower_worker_events(self, *matchers, by="worker, type", window="$__rate_interval"):
        """Flower's task events per second by worker (and type): a record of Flower's per-task
        series when the Config keeps them, else Flower's own per-worker counter rated over window."""
        if self.cfg.cardinality.flower_task_series:
            return _sum(by, self.series(FLOWER_WORKER_EVENTS, "flower", *matchers))
        events = f"flower_events_total{self.q.sel('flower', *matchers)}"
        return _sum(by, f"rate({events}[{window}])")

    def flower_worker_events_in_range(self, window, seconds, *matchers, by="worker"):
        """Tasks each worker finished (succeeded or failed) in the window, by Flower's count."""
        matchers = (*matchers, PROCESSED)
        if self.cfg.cardinality.flower_task_series:
            average = f"avg_over_time({self.series(FLOWER_WORKER_EVENTS, 'flower', *matchers)}[{window}])"
            return f"{_sum(by, average)} * {seconds}"
        return _sum(by, f"increase(flower_events_total{self.q.sel('flower', *matchers)}[{window}])")


def task_records(cfg: Config, q: Queries):
    """Per task, then per deployment and per queue, each raw series rated once."""
    w, d = cfg.thresholds.success_window, q.deployment
    succeeded, failed = TASK_SUCCEEDED, TASK_FAILED
    rules = [
        (succeeded, q.task_rate("succeeded", w)),
        (failed, q.task_rate("failed", w)),
        (TASK_FINISHED, either(succeeded, failed)),
        (TASK_SUCCESS_RATIO, ratio_or_zero(succeeded, TASK_FINISHED)),
        (SUCCESS_RATIO, ratio_or_zero(_sum(d, succeeded), _sum(d, TASK_FINISHED))),
        # Tasks per second, all tasks (finished, i.e. succeeded or failed).
        (THROUGHPUT, _sum(d, TASK_FINISHED)),
    ]
    return rules + queue_records(cfg, q)


def queue_records(cfg: Config, q: Queries):
    """Per queue, for the Overview: sums of the per-task records and a few raw rates."""
    w, by = cfg.thresholds.success_window, f"{q.deployment}, queue_name"
    return [
        (QUEUE_SUCCEEDED, _sum(by, TASK_SUCCEEDED)),
        (QUEUE_FINISHED, _sum(by, TASK_FINISHED)),
        (QUEUE_RECEIVED, q.task_rate("received", w, by=by)),
        (QUEUE_FAILED_BY_EXCEPTION, f"sum by ({by}, exception) (rate({q.failed_with_exception()}[{w}]))"),
    ]


def runtime_records(cfg: Config, q: Queries):
    """From the exporter's runtime histogram, every bucket of every task: the p95 the alert reads
    (`>= 0` drops NaN, no success in the window, so averages over time skip idle periods; only the
    p95: each quantile per task rates every bucket again), and the Overview's per queue."""
    w, by = cfg.thresholds.success_window, f"{q.deployment}, queue_name"
    exporter = q.sel("exporter")
    return [
        ("celery:task_runtime_seconds:p95", f"{q.runtime_quantile(0.95, w)} >= 0"),
        (QUEUE_RUNTIME_BUCKETS, f"sum by ({by}, le) (rate(celery_task_runtime_bucket{exporter}[{w}]))"),
        (QUEUE_RUNTIME_SUM, f"sum by ({by}) (rate(celery_task_runtime_sum{exporter}[{w}]))"),
        (QUEUE_RUNTIME_COUNT, f"sum by ({by}) (rate(celery_task_runtime_count{exporter}[{w}]))"),
    ]


def stage_records(cfg: Config, q: Queries):
    """The workers' latency histograms with the workers summed away, and the queue-wait p95 the
    alert reads, from them."""
    w = cfg.thresholds.queue_wait_window
    by = f"{q.deployment}, {Recorded(q).stage_labels}"
    rules = [
        (stage_buckets(stage), f"sum by ({by}, le) (rate({q.stage_series(stage, 'bucket')}[{w}]))") for stage in STAGES
    ]
    unknown = f"celery_worker_task_queue_wait_unknown_total{q.sel('worker')}"
    rules.append((QUEUE_WAIT_UNKNOWN, f"sum by ({by}) (rate({unknown}[{w}]))"))
    p95 = f"histogram_quantile(0.95, sum by ({q.by_queue}, le) ({stage_buckets('queue_wait')})) >= 0"
    return rules + [(QUEUE_WAIT_P95, p95)]


def flower_records(cfg: Config, q: Queries):
    """Flower's per-task events summed per worker, when the Config keeps them (else Flower's own
    series are per worker already)."""
    if not cfg.cardinality.flower_task_series:
        return []
    by = f"{q.deployment}, instance, worker, type"
    events = f"flower_events_total{q.sel('flower')}"
    return [(FLOWER_WORKER_EVENTS, f"sum by ({by}) (rate({events}[{cfg.thresholds.success_window}]))")]
