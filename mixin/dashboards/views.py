"""The views the community dashboards (Grafana.com 17508/17509, Flower's example) show: per-task
statistics over the selected range, mean runtime, top failing tasks, task mix, offline workers,
retries and tasks per worker, range-aware summaries.

Queries first (PromQL text, dashboard scope: selectors carry the cluster/namespace/job
variables), then the panels each dashboard appends.
"""

from mixin import config
from mixin.dashboards.builder import (
    RATE, bargauge, flower, link, override, selector, stat, success_steps, table, target,
    thresholds, timeseries,
)

RANGE = "$__range"
TASK_LABELS = "name, queue_name"
COUNTERS = ("sent", "received", "started", "succeeded", "failed", "retried", "revoked", "rejected")
WITH_EXCEPTION = 'exception!=""'  # the exporter adds exception="" failure series at zero
PROCESSED = 'type=~"task-succeeded|task-failed"'
RETRIED = 'type="task-retried"'


# --- Queries ------------------------------------------------------------------------------------

def task_increase(counter, *matchers, by=TASK_LABELS, window=RANGE):
    """How many task events of one kind in the window, per task; 0 (not missing) for a task that
    was received but never had this event, so tables and ratios have every row."""
    def increase(name):
        return f"sum by ({by}) (increase(celery_task_{name}_total{selector('exporter', *matchers)}[{window}]))"
    if counter == "received":
        return increase("received")
    return f"{increase(counter)} or {increase('received')} * 0"


def range_success_ratio(*matchers, by=TASK_LABELS, window=RANGE):
    """Succeeded / (succeeded + failed) over the window."""
    succeeded = f"({task_increase('succeeded', *matchers, by=by, window=window)})"
    failed = f"({task_increase('failed', *matchers, by=by, window=window)})"
    return f"{succeeded} / ({succeeded} + {failed})"


def mean_runtime(*matchers, by="name", window=RATE):
    """Mean runtime of successful runs: _sum / _count of the runtime histogram."""
    sel = selector("exporter", *matchers)
    return (f"sum by ({by}) (rate(celery_task_runtime_sum{sel}[{window}]))"
            f" / sum by ({by}) (rate(celery_task_runtime_count{sel}[{window}]))")


def range_runtime_quantile(quantile, *matchers, by=TASK_LABELS, window=RANGE):
    buckets = f"celery_task_runtime_bucket{selector('exporter', *matchers)}"
    return f"histogram_quantile({quantile}, sum by ({by}, le) (increase({buckets}[{window}])))"


def top_failing_tasks(*matchers, limit=10):
    failed = f"celery_task_failed_total{selector('exporter', *matchers, WITH_EXCEPTION)}"
    return f"sort_desc(topk({limit}, sum by (name) (increase({failed}[{RANGE}]))))"


def failures_by_task_and_exception(*matchers):
    failed = f"celery_task_failed_total{selector('exporter', *matchers, WITH_EXCEPTION)}"
    return f"sort_desc(sum by (name, exception) (increase({failed}[{RANGE}])))"


def task_mix(by, *matchers):
    """Tasks received per second by `by` (name or queue_name): the workload's composition."""
    return f"sum by ({by}) (rate(celery_task_received_total{selector('exporter', *matchers)}[{RATE}]))"


def range_total(counter, *matchers):
    return f"sum(increase(celery_task_{counter}_total{selector('exporter', *matchers)}[{RANGE}]))"


def range_mean_runtime(*matchers):
    sel = selector("exporter", *matchers)
    return (f"sum(increase(celery_task_runtime_sum{sel}[{RANGE}]))"
            f" / sum(increase(celery_task_runtime_count{sel}[{RANGE}]))")


def workers_offline(*matchers):
    """Workers Flower reports offline (worker-offline event, or not yet purged after silence)."""
    return f"count(flower_worker_online{selector('flower', *matchers)} == 0) or vector(0)"


def exporter_workers(up, *matchers):
    """Workers celery-exporter sees up (1) or down (0), by the host part of their names."""
    return f"count(celery_worker_up{selector('exporter', *matchers)} == {up}) or vector(0)"


def retried_per_worker(*matchers):
    events = f"flower_events_total{selector('flower', *matchers, RETRIED)}"
    return f"sum by (worker) (rate({events}[{RATE}]))"


def tasks_per_worker(*matchers):
    events = f"flower_events_total{selector('flower', *matchers, PROCESSED)}"
    return f"sort_desc(sum by (worker) (increase({events}[{RANGE}])))"


# --- Panels -------------------------------------------------------------------------------------

def task_table(*matchers):
    """One row per task and queue over the range; the Task cell links to Flower's task list."""
    targets = [target(task_increase(counter, *matchers), instant=True, table=True)
               for counter in COUNTERS]
    targets += [target(range_success_ratio(*matchers), instant=True, table=True),
                target(mean_runtime(*matchers, by=TASK_LABELS, window=RANGE), instant=True, table=True),
                target(range_runtime_quantile(0.95, *matchers), instant=True, table=True)]
    names = [c.capitalize() for c in COUNTERS] + ["Success ratio", "Mean runtime", "p95 runtime"]
    columns = {f"Value #{chr(ord('A') + i)}": title for i, title in enumerate(names)}
    columns.update({"name": "Task", "queue_name": "Queue", "cluster": "Cluster",
                    "namespace": "Namespace"})
    return table(
        "Tasks in range", targets, columns=columns, sort_by=("Received", True), h=9,
        description="Per task and queue over the selected time range: events by state, success "
                    "ratio (succeeded / finished), mean and p95 runtime of successful runs. Click a "
                    "column header to sort; click a task to open its list in Flower.",
        overrides=[
            override("Task", links=[link("Flower: ${__value.raw} tasks",
                                         flower("/tasks?name=${__value.raw}"))]),
            override("Success ratio", unit="percentunit", thresholds=success_steps(),
                     custom__cellOptions={"type": "color-text"}),
            override("Mean runtime", unit="s"),
            override("p95 runtime", unit="s"),
            override("Failed", thresholds=thresholds("green", (1, "red")),
                     custom__cellOptions={"type": "color-text"}),
        ])


def task_panels(*matchers):
    """Appended to Celery / Tasks (matchers: the task and queue variables)."""
    return [
        task_table(*matchers),
        timeseries("Mean runtime", [target(mean_runtime(*matchers), "{{name}} mean")],
                   description="Mean runtime of successful runs per task (histogram _sum / "
                               "_count), next to the quantiles.", unit="s"),
        bargauge("Top failing tasks", [target(top_failing_tasks(*matchers), "{{name}}", instant=True)],
                 description="Tasks with the most failures in the selected range.",
                 steps=thresholds("red"),
                 links=[link("Flower: failed ${__field.labels.name} tasks",
                             flower("/tasks?name=${__field.labels.name}&state=FAILURE"))]),
        bargauge("Failures by task and exception",
                 [target(failures_by_task_and_exception(*matchers), "{{name}}: {{exception}}",
                         instant=True)],
                 description="Failures in the selected range per task and exception class.",
                 steps=thresholds("red")),
        timeseries("Task mix by name", [target(task_mix("name", *matchers), "{{name}}")],
                   description="Tasks received per second by task name, stacked: a change in "
                               "workload shows as a change in the layers.",
                   unit="reqps", stack=True),
        timeseries("Task mix by queue", [target(task_mix("queue_name", *matchers), "{{queue_name}}")],
                   description="Tasks received per second by queue, stacked.",
                   unit="reqps", stack=True),
    ]


def overview_summaries(*matchers):
    """Range-aware summaries for Celery / Overview ($__range: the selected time range)."""
    return [
        stat("Received in range", [target(range_total("received", *matchers), instant=True)],
             description="Tasks received by workers in the selected time range.", graph=False, w=8),
        stat("Success rate in range",
             [target(range_success_ratio(*matchers, by=""), instant=True)],
             description="Succeeded / (succeeded + failed) over the selected time range. Red below "
                         f"{config.THRESHOLDS['success_ratio_min']:.0%}.",
             unit="percentunit", steps=success_steps(), min=0, max=1, graph=False, w=8),
        stat("Mean runtime in range", [target(range_mean_runtime(*matchers), instant=True)],
             description="Mean runtime of successful tasks over the selected time range "
                         "(histogram _sum / _count).", unit="s", graph=False, w=8),
    ]


def worker_panels(*matchers):
    """Appended to Celery / Workers (matchers: the worker variable)."""
    return [
        stat("Workers offline", [target(workers_offline(*matchers))],
             description="Workers Flower reports offline (said goodbye, or silent and not yet "
                         "purged).", steps=thresholds("green", (1, "red")), graph=False, w=8),
        stat("Workers up (exporter)", [target(exporter_workers(1))],
             description="Workers celery-exporter sees up, as the community dashboards count "
                         "them (by the host part of the name: each worker has its own).",
             steps=thresholds("red", (1, "green")), graph=False, w=8),
        stat("Workers down (exporter)", [target(exporter_workers(0))],
             description="Workers celery-exporter last saw go offline (kept until it purges them).",
             steps=thresholds("green", (1, "red")), graph=False, w=8),
        timeseries("Retried tasks per worker", [target(retried_per_worker(*matchers), "{{worker}}")],
                   description="Task retries per second by worker (Flower's task-retried events).",
                   unit="reqps",
                   links=[link("Flower: retried tasks", flower("/tasks?state=RETRY"))]),
        bargauge("Tasks per worker in range",
                 [target(tasks_per_worker(*matchers), "{{worker}}", instant=True)],
                 description="Tasks each worker finished (succeeded or failed) in the selected range.",
                 links=[link("Open ${__field.labels.worker} in Flower",
                             flower("/worker/${__field.labels.worker}"))]),
    ]
