"""Celery / Latency: how long tasks wait, by stage, from each worker's own histograms
(worker/latency.py): queue wait (published, or due, -> started), the part of it spent prefetched
at a worker, and runtime; per queue and per task, with heatmaps.

Every panel reads the recording rules of those histograms (mixin/records.py: every worker's series
summed away, over thresholds.queue_wait_window), not the per-worker series. Without the task label
(cardinality.worker_latency_by_task false: the workers run with WORKER_LATENCY_METRICS=per_queue)
the panels and the variable by task are left out.
"""

from mixin.dashboards.builder import Board, heatmap, query_variable, stat, target, thresholds, timeseries

QUEUE = 'queue=~"$queue"'
TASK = 'task=~"$task"'
QUANTILES = (0.5, 0.95, 0.99)


def matchers(b):
    return (QUEUE, TASK) if b.cfg.cardinality.worker_latency_by_task else (QUEUE,)


def quantiles(b, stage, by, legend):
    return [target(b.r.stage_quantile(stage, q, *matchers(b), by=by), f"{legend} p{round(q * 100)}") for q in QUANTILES]


def stats(b):
    t = b.t
    limit = t.queue_wait_p95_max_seconds
    m, window = matchers(b), t.queue_wait_window
    return [
        stat(
            "Queue wait p95",
            [target(b.r.stage_quantile("queue_wait", 0.95, *m, by=""))],
            description=f"95% of the selected tasks started within this time of being published (or due), over "
            f"{window}, as CeleryQueueWaitHigh computes it per queue (red above {limit:g} s).",
            unit="s",
            steps=thresholds("green", (limit, "red")),
            w=6,
        ),
        stat(
            "Prefetch wait p95",
            [target(b.r.stage_quantile("prefetch_wait", 0.95, *m, by=""))],
            description=f"The part of the wait spent at a worker, received but not started (behind other tasks), "
            f"over {window}.",
            unit="s",
            w=6,
        ),
        stat(
            "Runtime p95",
            [target(b.r.stage_quantile("runtime", 0.95, *m, by=""))],
            description=f"95% of the selected tasks ran within this time (any outcome), over {window}.",
            unit="s",
            w=6,
        ),
        stat(
            "Publish time unknown",
            [target(b.r.unknown_publish_time_share(*m))],
            description="Share of started tasks whose message carried no publish time (a client that does not set "
            "the published_at header): their queue wait is not measured.",
            unit="percentunit",
            steps=thresholds("green", (0.01, "yellow")),
            graph=False,
            w=6,
        ),
    ]


def per_task(b):
    """p95 per task name, when the workers label their histograms by task."""
    if not b.cfg.cardinality.worker_latency_by_task:
        return []
    return [
        timeseries(
            "Queue wait p95 per task",
            [target(b.r.stage_quantile("queue_wait", 0.95, *matchers(b), by="task"), "{{task}}")],
            description="Time from publish (or ETA) to start, 95th percentile per task name.",
            unit="s",
        ),
        timeseries(
            "Runtime p95 per task",
            [target(b.r.stage_quantile("runtime", 0.95, *matchers(b), by="task"), "{{task}}")],
            description="Runtime, 95th percentile per task name.",
            unit="s",
        ),
    ]


def oldest_message(b, query):
    """The broker's view: how long the oldest message still waiting in each queue has waited (RabbitMQ
    only). The workers' histograms count a wait once the task starts; this one grows while nothing
    starts it, a consumer that died included."""
    if query is None:
        return []
    return [
        timeseries(
            "Oldest waiting message per queue",
            [target(query, "{{queue}}")],
            description="Seconds since the first message still ready in each queue was published (RabbitMQ's "
            "head message timestamp; the publisher stamps it). Empty queues show nothing. It rises "
            "steadily when nothing consumes the queue, before any task reports a wait.",
            unit="s",
            w=12,
        )
    ]


def build(cfg):
    b = Board(cfg)
    limit = b.t.queue_wait_p95_max_seconds
    # The queue variable lists the workers' queues: without their /metrics there is no dashboard.
    oldest = b.q.oldest_message_age(QUEUE) if cfg.sources.worker_metrics else None
    panels = (
        stats(b)
        + [
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
        ]
        + per_task(b)
        + [
            heatmap(
                "Queue wait heatmap",
                [target(b.r.stage_heatmap("queue_wait", *matchers(b)), "{{le}}")],
                description="Tasks per second by queue wait bucket: a second band far above the first is a "
                "consumer stuck behind long tasks, a band moving up is a growing backlog.",
            ),
            heatmap(
                "Runtime heatmap",
                [target(b.r.stage_heatmap("runtime", *matchers(b)), "{{le}}")],
                description="Tasks per second by runtime bucket.",
            ),
            timeseries(
                "Prefetch wait per queue",
                quantiles(b, "prefetch_wait", "queue", "{{queue}}"),
                description="Time a task waited at a worker between being received (prefetched) and started: "
                "long waits here mean prefetching behind long tasks.",
                unit="s",
                w=24 if oldest is None else 12,
            ),
        ]
        + oldest_message(b, oldest)
    )
    worker = b.selector("worker")
    variables = [
        query_variable("queue", "Queue", f"label_values(celery_worker_task_queue_wait_seconds_count{worker}, queue)")
    ]
    if cfg.cardinality.worker_latency_by_task:
        variables.append(
            query_variable("task", "Task", f"label_values(celery_worker_task_queue_wait_seconds_count{worker}, task)")
        )
    return b.dashboard(
        "latency",
        "Celery / Latency",
        "How long tasks wait, by stage: queue wait, prefetch wait, runtime, per queue and task.",
        panels,
        variables=variables,
    )
