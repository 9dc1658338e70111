"""The views the community dashboards (Grafana.com 17508/17509, Flower's example) show: per-task
statistics over the selected range, mean runtime, top failing tasks, task mix, offline workers,
retries and tasks per worker, range-aware summaries. The panels each dashboard appends; their
queries are methods of mixin/queries.py.
"""

from mixin import records
from mixin.dashboards.builder import RATE, bargauge, override, stat, table, target, thresholds, timeseries

RANGE = "$__range"
RANGE_SECONDS = "$__range_s"
TASK_LABELS = "name, queue_name"
COUNTERS = ("sent", "received", "started", "succeeded", "failed", "retried", "revoked", "rejected")


# --- Panels -------------------------------------------------------------------------------------


def task_table(b, *matchers):
    """One row per task and queue over the range; the Task cell links to Flower's task list."""
    targets = [target(b.q.task_increase(counter, RANGE, *matchers), instant=True, table=True) for counter in COUNTERS]
    targets += [
        target(b.q.increase_success_ratio(RANGE, *matchers), instant=True, table=True),
        target(b.q.mean_runtime(RANGE, *matchers, by=TASK_LABELS), instant=True, table=True),
        target(b.q.increase_runtime_quantile(0.95, RANGE, *matchers), instant=True, table=True),
    ]
    names = [c.capitalize() for c in COUNTERS] + ["Success ratio", "Mean runtime", "p95 runtime"]
    columns = {f"Value #{chr(ord('A') + i)}": title for i, title in enumerate(names)}
    columns.update({"name": "Task", "queue_name": "Queue", "cluster": "Cluster", "namespace": "Namespace"})
    return table(
        "Tasks in range",
        targets,
        columns=columns,
        sort_by=("Received", True),
        h=9,
        description="Per task and queue over the selected time range: events by state, success "
        "ratio (succeeded / finished), mean and p95 runtime of successful runs. Click a "
        "column header to sort; click a task to open its list in Flower.",
        overrides=[
            override("Task", links=b.flower_links(("Flower: ${__value.raw} tasks", "/tasks?name=${__value.raw}"))),
            override(
                "Success ratio",
                unit="percentunit",
                thresholds=b.success_steps(),
                custom__cellOptions={"type": "color-text"},
            ),
            override("Mean runtime", unit="s"),
            override("p95 runtime", unit="s"),
            override("Failed", thresholds=thresholds("green", (1, "red")), custom__cellOptions={"type": "color-text"}),
        ],
    )


def task_panels(b, *matchers):
    """Appended to Celery / Tasks (matchers: the task and queue variables)."""
    return [
        task_table(b, *matchers),
        timeseries(
            "Mean runtime",
            [target(b.q.mean_runtime(RATE, *matchers), "{{name}} mean")],
            description="Mean runtime of successful runs per task (histogram _sum / _count), next to the quantiles.",
            unit="s",
        ),
        bargauge(
            "Top failing tasks",
            [target(b.q.top_failing_tasks(RANGE, *matchers), "{{name}}", instant=True)],
            description="Tasks with the most failures in the selected range.",
            steps=thresholds("red"),
            links=b.flower_links(
                ("Flower: failed ${__field.labels.name} tasks", "/tasks?name=${__field.labels.name}&state=FAILURE")
            ),
        ),
        bargauge(
            "Failures by task and exception",
            [target(b.q.failures_by_task_and_exception(RANGE, *matchers), "{{name}}: {{exception}}", instant=True)],
            description="Failures in the selected range per task and exception class.",
            steps=thresholds("red"),
        ),
        timeseries(
            "Task mix by name",
            [target(b.q.task_mix("name", RATE, *matchers), "{{name}}")],
            description="Tasks received per second by task name, stacked: a change in "
            "workload shows as a change in the layers.",
            unit="reqps",
            stack=True,
        ),
        timeseries(
            "Task mix by queue",
            [target(b.q.task_mix("queue_name", RATE, *matchers), "{{queue_name}}")],
            description="Tasks received per second by queue, stacked.",
            unit="reqps",
            stack=True,
        ),
    ]


def overview_summaries(b, *matchers):
    """Range-aware summaries for Celery / Overview ($__range: the selected time range), from the
    per-queue records: a week's range reads one series per queue, not every task's counters."""
    received = b.r.count_in_range(records.QUEUE_RECEIVED, RANGE, RANGE_SECONDS, *matchers)
    window = b.t.success_window
    return [
        stat(
            "Received in range",
            [target(received, instant=True)],
            description=f"Tasks received by workers in the selected time range (their rate over {window}, "
            "averaged over the range, times its length).",
            graph=False,
            w=8,
        ),
        stat(
            "Success rate in range",
            [target(b.r.success_ratio_in_range(RANGE, *matchers), instant=True)],
            description="Succeeded / (succeeded + failed) over the selected time range. Red below "
            f"{b.t.success_ratio_min:.0%}.",
            unit="percentunit",
            steps=b.success_steps(),
            minimum=0,
            maximum=1,
            graph=False,
            w=8,
        ),
        stat(
            "Mean runtime in range",
            [target(b.r.mean_runtime_in_range(RANGE, *matchers), instant=True)],
            description="Mean runtime of successful tasks over the selected time range (histogram _sum / _count).",
            unit="s",
            graph=False,
            w=8,
        ),
    ]


def worker_panels(b, *matchers):
    """Appended to Celery / Workers (matchers: the worker variable)."""
    return [
        stat(
            "Workers offline",
            [target(b.q.workers_offline(*matchers))],
            description="Workers Flower reports offline (said goodbye, or silent and not yet purged).",
            steps=thresholds("green", (1, "red")),
            graph=False,
            w=8,
        ),
        stat(
            "Workers up (exporter)",
            [target(b.q.exporter_workers(1))],
            description="Workers celery-exporter sees up, as the community dashboards count "
            "them (by the host part of the name: each worker has its own).",
            steps=thresholds("red", (1, "green")),
            graph=False,
            w=8,
        ),
        stat(
            "Workers down (exporter)",
            [target(b.q.exporter_workers(0))],
            description="Workers celery-exporter last saw go offline (kept until it purges them).",
            steps=thresholds("green", (1, "red")),
            graph=False,
            w=8,
        ),
        timeseries(
            "Retried tasks per worker",
            [target(b.r.flower_worker_events(*matchers, 'type="task-retried"', by="worker"), "{{worker}}")],
            description="Task retries per second by worker (Flower's task-retried events).",
            unit="reqps",
            links=b.flower_links(("Flower: retried tasks", "/tasks?state=RETRY")),
        ),
        bargauge(
            "Tasks per worker in range",
            [
                target(
                    f"sort_desc({b.r.flower_worker_events_in_range(RANGE, RANGE_SECONDS, *matchers)})",
                    "{{worker}}",
                    instant=True,
                )
            ],
            description="Tasks each worker finished (succeeded or failed) in the selected range.",
            links=b.flower_links(("Open ${__field.labels.worker} in Flower", "/worker/${__field.labels.worker}")),
        ),
    ]
