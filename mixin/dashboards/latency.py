"""Celery / Latency: how long tasks wait, by stage, from each worker's own histograms
(worker/latency.py): queue wait (published, or due, -> started), the part of it spent prefetched
at a worker, and runtime; per queue and per task, with heatmaps."""

from mixin.dashboards.builder import RATE, Board, heatmap, query_variable, stat, target, thresholds, timeseries

QUEUE = 'queue=~"$queue"'
TASK = 'task=~"$task"'
QUANTILES = (0.5, 0.95, 0.99)


def quantiles(b, stage, by, legend):
    return [
        target(b.q.stage_quantile(stage, q, RATE, QUEUE, TASK, by=by), f"{legend} p{round(q * 100)}") for q in QUANTILES
    ]


def stats(b):
    t = b.t
    limit = t.queue_wait_p95_max_seconds
    return [
        stat(
            "Queue wait p95",
            [target(b.q.stage_quantile("queue_wait", 0.95, t.queue_wait_window, QUEUE, TASK, by=""))],
            description=f"95% of the selected tasks started within this time of being published (or due), over "
            f"{t.queue_wait_window}, as CeleryQueueWaitHigh computes it per queue (red above {limit:g} s).",
            unit="s",
            steps=thresholds("green", (limit, "red")),
            w=6,
        ),
        stat(
            "Prefetch wait p95",
            [target(b.q.stage_quantile("prefetch_wait", 0.95, RATE, QUEUE, TASK, by=""))],
            description="The part of the wait spent at a worker, received but not started (behind other tasks).",
            unit="s",
            w=6,
        ),
        stat(
            "Runtime p95",
            [target(b.q.stage_quantile("runtime", 0.95, RATE, QUEUE, TASK, by=""))],
            description="95% of the selected tasks ran within this time (any outcome).",
            unit="s",
            w=6,
        ),
        stat(
            "Publish time unknown",
            [target(b.q.unknown_publish_time_share(RATE, QUEUE, TASK, by=""))],
            description="Share of started tasks whose message carried no publish time (a client that does not set "
            "the published_at header): their queue wait is not measured.",
            unit="percentunit",
            steps=thresholds("green", (0.01, "yellow")),
            graph=False,
            w=6,
        ),
    ]


def build(cfg):
    b = Board(cfg)
    limit = b.t.queue_wait_p95_max_seconds
    panels = stats(b) + [
        timeseries(
            "Queue wait per queue",
            quantiles(b, "queue_wait", "queue", "{{queue}}"),
            description="Time from publish (or ETA) to start, per queue. Queue depth alone cannot tell a dead "
            "consumer from a healthy backlog; the wait can. The dashed line is the "
            f"CeleryQueueWaitHigh bound ({limit:g} s, on p95).",
            unit="s",
            steps=thresholds("green", (limit, "red")),
            threshold_line=True,
        ),
        timeseries(
            "Runtime per queue",
            quantiles(b, "runtime", "queue", "{{queue}}"),
            description="Time from start to finish (any outcome), per queue.",
            unit="s",
        ),
        timeseries(
            "Queue wait p95 per task",
            [target(b.q.stage_quantile("queue_wait", 0.95, RATE, QUEUE, TASK, by="task"), "{{task}}")],
            description="Time from publish (or ETA) to start, 95th percentile per task name.",
            unit="s",
        ),
        timeseries(
            "Runtime p95 per task",
            [target(b.q.stage_quantile("runtime", 0.95, RATE, QUEUE, TASK, by="task"), "{{task}}")],
            description="Runtime, 95th percentile per task name.",
            unit="s",
        ),
        heatmap(
            "Queue wait heatmap",
            [target(f"sum by (le) (rate({b.q.stage_series('queue_wait', 'bucket', QUEUE, TASK)}[{RATE}]))", "{{le}}")],
            description="Tasks per second by queue wait bucket: a second band far above the first is a "
            "consumer stuck behind long tasks, a band moving up is a growing backlog.",
        ),
        heatmap(
            "Runtime heatmap",
            [target(f"sum by (le) (rate({b.q.stage_series('runtime', 'bucket', QUEUE, TASK)}[{RATE}]))", "{{le}}")],
            description="Tasks per second by runtime bucket.",
        ),
        timeseries(
            "Prefetch wait per queue",
            quantiles(b, "prefetch_wait", "queue", "{{queue}}"),
            description="Time a task waited at a worker between being received (prefetched) and started: "
            "long waits here mean prefetching behind long tasks.",
            unit="s",
            w=24,
        ),
    ]
    worker = b.selector("worker")
    variables = [
        query_variable("queue", "Queue", f"label_values(celery_worker_task_queue_wait_seconds_count{worker}, queue)"),
        query_variable("task", "Task", f"label_values(celery_worker_task_queue_wait_seconds_count{worker}, task)"),
    ]
    return b.dashboard(
        "latency",
        "Celery / Latency",
        "How long tasks wait, by stage: queue wait, prefetch wait, runtime, per queue and task.",
        panels,
        variables=variables,
    )
