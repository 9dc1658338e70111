"""Celery / Tasks: one task name (or several) at a time, with links to Flower's task list."""

from mixin.dashboards import views
from mixin.dashboards.builder import RATE, Board, query_variable, stat, target, thresholds, timeseries

TASK = 'name=~"$task"'
FLOWER_TASK = 'task=~"$task"'  # Flower labels the task name "task"
QUEUE = 'queue_name=~"$queue"'
# The workers' own histograms label the task name "task" and the queue "queue".
WORKER_TASK = 'task=~"$task"'
WORKER_QUEUE = 'queue=~"$queue"'
# celery-exporter counter -> the task state Flower's task list filters by (/tasks?state=...).
FLOWER_STATES = {
    "sent": "PENDING",
    "received": "RECEIVED",
    "started": "STARTED",
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
    "retried": "RETRY",
    "revoked": "REVOKED",
    "rejected": "REJECTED",
}
FLOWER_TASK_LIST = "/tasks?name=${__field.labels.name}&state=${__field.labels.state}"


def rate_by_state(b):
    """Every counter's rate by task name, labelled state=<Flower state>, in one query."""
    parts = []
    for counter, state in FLOWER_STATES.items():
        rate = b.q.task_rate(counter, RATE, TASK, QUEUE, by="name")
        parts.append(f'label_replace({rate}, "state", "{state}", "", "")')
    return " or ".join(parts)


def stats(b):
    """The selected tasks now: success rate, rate, failures, runtime."""
    window = b.t.success_window
    failed = b.q.failed_with_exception(TASK, QUEUE)
    return [
        stat(
            "Success rate",
            [target(b.success_ratio(TASK, QUEUE, window=window))],
            description=f"Succeeded / (succeeded + failed) over {window} for the selected tasks. "
            f"Red below {b.t.success_ratio_min:.0%}.",
            unit="percentunit",
            steps=b.success_steps(),
            minimum=0,
            maximum=1,
            w=6,
        ),
        stat(
            "Tasks/s",
            [target(b.finished_rate(TASK, QUEUE))],
            description="Selected tasks finished (succeeded or failed) per second.",
            w=6,
        ),
        stat(
            "Failed in range",
            [target(f"sum(increase({failed}[$__range]))", instant=True)],
            description="Failed tasks in the selected time range.",
            steps=thresholds("green", (1, "red")),
            graph=False,
            w=6,
            links=b.flower_links(("Failed tasks in Flower", "/tasks?state=FAILURE")),
        ),
        stat(
            "Runtime p95",
            [target(b.runtime_quantile(0.95, TASK, QUEUE))],
            description="95th percentile runtime of successful runs of the selected tasks.",
            unit="s",
            w=6,
        ),
    ]


def trends(b):
    """Per task over time: events by state, success rate, failures, runtime, wait at the worker."""
    failed = b.q.failed_with_exception(TASK, QUEUE)
    failed_links = b.flower_links(
        ("Flower: failed ${__field.labels.name} tasks", "/tasks?name=${__field.labels.name}&state=FAILURE")
    )
    return [
        timeseries(
            "Rate by state",
            [target(rate_by_state(b), "{{name}} {{state}}")],
            description="Events per second by task and state (Flower's state names). "
            "Click a series to open Flower's task list for that task and state.",
            unit="reqps",
            w=24,
            h=9,
            links=b.flower_links(("Flower: ${__field.labels.name} tasks in ${__field.labels.state}", FLOWER_TASK_LIST)),
        ),
        timeseries(
            "Success rate by task",
            [target(b.success_ratio(TASK, QUEUE, by="name"), "{{name}}")],
            description="Succeeded / finished per task. The dashed line is the alert "
            f"threshold ({b.t.success_ratio_min:.0%}).",
            unit="percentunit",
            steps=b.success_steps(),
            threshold_line=True,
            minimum=0,
            maximum=1,
            links=failed_links,
        ),
        timeseries(
            "Failures by exception",
            [target(f"sum by (name, exception) (rate({failed}[{RATE}]))", "{{name}}: {{exception}}")],
            description="Failed tasks per second by task and exception class.",
            unit="reqps",
            links=failed_links,
        ),
        timeseries(
            "Runtime quantiles",
            [
                target(b.runtime_quantile(q, TASK, QUEUE, by="name"), f"{{{{name}}}} p{round(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ],
            description="Runtime quantiles of successful runs per task (celery-exporter histogram).",
            unit="s",
        ),
        wait_at_the_worker(b),
    ]


def wait_at_the_worker(b):
    """How long tasks waited at a worker between received and started: Flower's gauge per task
    name when Flower keeps its per-task series, else the workers' own prefetch-wait histogram (per
    task, or per queue without the task label), else Flower's gauge per worker."""
    cardinality, window = b.cfg.cardinality, b.t.queue_wait_window
    whole_wait = "The whole wait from publish to start, by the workers' own measure, is on Celery / Latency."
    if cardinality.flower_task_series or not b.cfg.sources.worker_metrics:
        by = "task" if cardinality.flower_task_series else "worker"
        prefetch = b.q.prefetch_time(FLOWER_TASK) if by == "task" else b.q.prefetch_time()
        return timeseries(
            "Queue wait at the worker",
            [target(f"max by ({by}) (max_over_time({prefetch}[{RATE}]))", f"{{{{{by}}}}}")],
            description=f"Longest time a task waited at a worker between being received (prefetched) and "
            f"started, per {'task' if by == 'task' else 'worker'}, from Flower; 0 once it finished. {whole_wait}",
            unit="s",
        )
    by = "task" if cardinality.worker_latency_by_task else "queue"
    matchers = (WORKER_TASK, WORKER_QUEUE) if by == "task" else (WORKER_QUEUE,)
    return timeseries(
        "Queue wait at the worker",
        [target(b.r.stage_quantile("prefetch_wait", 0.95, *matchers, by=by), f"{{{{{by}}}}} p95")],
        description=f"95% of the tasks waited less than this at a worker between being received (prefetched) "
        f"and started, per {by}, over {window} (the workers' own histograms). {whole_wait}",
        unit="s",
    )


def build(cfg):
    b = Board(cfg)
    panels = stats(b) + trends(b) + views.task_panels(b, TASK, QUEUE)
    received = b.q.task_counter("received")
    variables = [
        query_variable("queue", "Queue", f"label_values({received}, queue_name)"),
        query_variable("task", "Task", f"label_values({b.q.task_counter('received', QUEUE)}, name)"),
    ]
    links = b.flower_links(("Flower: tasks", "/tasks"), ("Flower: failed tasks", "/tasks?state=FAILURE"))
    return b.dashboard(
        "tasks",
        "Celery / Tasks",
        "Per task: rate by state, success rate, failures, runtime, wait; links lead to Flower's task list.",
        panels,
        variables=variables,
        links=links,
    )
