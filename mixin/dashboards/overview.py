"""Celery / Overview: is Celery healthy, and if not, where? The guide's five signals in one look."""

from mixin.dashboards import views
from mixin.dashboards.builder import (
    Board,
    bargauge,
    gauge,
    query_variable,
    stat,
    table,
    target,
    thresholds,
    timeseries,
)
from mixin import records
from mixin.queries import EXPORTER_QUEUE_LENGTH

QUEUE = 'queue_name=~"$queue"'
# When the baseline window has no data yet (a stack younger than the offset), the panel falls back
# to this long-window average and its legend says so.
BASELINE_FALLBACK_WINDOW = "1h"


def baseline(b):
    offset = b.t.throughput_baseline_offset
    earlier = f"same time {offset} earlier"
    fallback = f"{BASELINE_FALLBACK_WINDOW} average (no data {offset} earlier yet)"
    then = f"sum({b.r.series(records.QUEUE_FINISHED, 'exporter', QUEUE)} offset {offset})"
    average = b.r.over_range(records.QUEUE_FINISHED, BASELINE_FALLBACK_WINDOW, QUEUE)
    return (
        f'label_replace({then}, "baseline", "{earlier}", "", "")'
        f' or on() label_replace({average}, "baseline", "{fallback}", "", "")'
    )


READY = 'queue=~"$queue"'


def firing(b):
    # The Watchdog (severity "none") always fires to prove the pipeline works; it is not a problem.
    return f'alertstate="firing", severity!="none", {b.scope}'


def signal_stats(b):
    """The guide's signals now, one stat each."""
    t = b.t
    window, backlog = t.success_window, t.queue_backlog_max
    backlog_steps = thresholds("green", (1, "yellow"), (backlog, "red"))
    return [
        stat(
            "Success rate",
            [target(b.r.success_ratio(QUEUE))],
            description=f"Succeeded / (succeeded + failed) over {window}, as the alert "
            f"computes it. "
            f"Red below {t.success_ratio_min:.0%}.",
            unit="percentunit",
            steps=b.success_steps(),
            minimum=0,
            maximum=1,
        ),
        stat(
            "Tasks/s",
            [target(b.r.finished_rate(QUEUE))],
            description=f"Tasks finished (succeeded or failed) per second, over {window}.",
        ),
        stat(
            "Queue depth",
            [target(f"sum({b.queue_depth(READY)})")],
            description=f"Messages waiting in the Celery queues. Target 0; a backlog above "
            f"{backlog} for {t.queue_backlog_for} alerts.",
            steps=backlog_steps,
        ),
        stat(
            "Workers online",
            [target(f"sum({b.q.flower_worker_online()})")],
            description="Workers Flower sees online (heartbeats).",
            steps=thresholds("red", (1, "green")),
            graph=False,
        ),
        gauge(
            "Busiest worker CPU",
            [target(f"max({b.r.worker_cpu_ratio()})")],
            description="The highest CPU use of any worker, as a share of the cores it may use.",
            unit="percentunit",
            steps=b.cpu_steps(),
            minimum=0,
            maximum=1,
        ),
        stat(
            "Alerts firing",
            [target(f"count(ALERTS{{{firing(b)}}}) or vector(0)")],
            description="Prometheus alerts firing now; the table below lists them.",
            steps=thresholds("green", (1, "red")),
            graph=False,
        ),
    ]


def trend_panels(b):
    """Throughput against its baseline, queues, workers' CPU and memory, runtime, failures."""
    t = b.t
    backlog, offset = t.queue_backlog_max, t.throughput_baseline_offset
    failed = b.r.count_in_range(records.QUEUE_FAILED_BY_EXCEPTION, "$__range", "$__range_s", QUEUE, by="exception")
    worker_links = b.flower_links(("Open ${__field.labels.worker} in Flower", "/worker/${__field.labels.worker}"))
    return [
        timeseries(
            f"Tasks/s now vs {offset} earlier",
            [target(b.r.finished_rate(QUEUE), "now"), target(baseline(b), "{{baseline}}")],
            description=f"Finished tasks per second over {t.success_window} against the same time {offset} earlier "
            f"(or the {BASELINE_FALLBACK_WINDOW} average while there is no "
            f"data that old). The alert fires below "
            f"{t.throughput_ratio_min:.0%} of the baseline.",
            unit="reqps",
            w=8,
        ),
        timeseries(
            "Queue depth per queue",
            [target(b.queue_depth(READY), "{{queue}}")],
            description=f"Ready messages per queue. Target 0; the dashed line is the backlog threshold ({backlog}).",
            steps=thresholds("green", (backlog, "red")),
            threshold_line=True,
            w=8,
        ),
        timeseries(
            "Queue wait p95 per queue",
            [target(b.r.stage_quantile("queue_wait", 0.95, READY), "{{queue}}")],
            description=f"95% of the tasks started within this time of being published (or due), per "
            f"queue, by the workers' own measure: a queue can be short and still slow, or long and "
            f"draining fast. CeleryQueueWaitHigh fires above the dashed line "
            f"({t.queue_wait_p95_max_seconds:g} s) for {t.queue_wait_for}.",
            unit="s",
            steps=thresholds("green", (t.queue_wait_p95_max_seconds, "red")),
            threshold_line=True,
            w=8,
        ),
        timeseries(
            "Worker CPU",
            [target(b.r.worker_cpu_ratio(), "{{worker}}")],
            description="CPU of each worker's process tree (main process and pool children) "
            "as a share of the cores it may use. The dashed line is the alert "
            f"threshold ({t.worker_cpu_ratio_max:.0%}).",
            unit="percentunit",
            steps=b.cpu_steps(),
            threshold_line=True,
            minimum=0,
            links=worker_links,
        ),
        timeseries(
            "Worker memory",
            [target(b.worker_memory(), "{{worker}}")],
            description="Resident memory of each worker's process tree. It should be flat; steady growth alerts.",
            unit="bytes",
            minimum=0,
            links=worker_links,
        ),
        timeseries(
            "Task runtime",
            [target(b.r.runtime_quantile(q, QUEUE), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)],
            description=f"Runtime quantiles of successful tasks over {t.success_window} (celery-exporter histogram).",
            unit="s",
        ),
        bargauge(
            "Failures by exception",
            [target(f"sort_desc({failed})", "{{exception}}", instant=True)],
            description="Failed tasks in the selected time range, by exception class.",
            steps=thresholds("red"),
            links=b.flower_links(("Failed tasks in Flower", "/tasks?state=FAILURE")),
        ),
    ]


def pipeline_panels(b):
    """The monitoring itself: events lost per monitor (when the workers' own count is there to
    compare with), and the alerts firing."""
    t = b.t
    lost = []
    if b.cfg.sources.worker_metrics and b.q.monitors():
        # The alert's record: its job label names the monitor.
        lost = [target(f"{records.EVENTS_LOST}{{{b.scope}}}", "{{job}}")]
    return [
        timeseries(
            "Events lost per monitor",
            lost,
            description=f"Share of the tasks the workers started (their own count) whose "
            f"task-started event Flower or the exporter did not count, over "
            f"{t.events_lost_window}. Near 0 (below 0 when the "
            f"monitor also sees workers without their own /metrics); the dashed "
            f"line is the alert threshold "
            f"({t.events_lost_ratio_max:.0%}).",
            unit="percentunit",
            steps=thresholds("green", (t.events_lost_ratio_max, "red")),
            threshold_line=True,
            w=24,
            h=6,
        ),
        table(
            "Firing alerts",
            [target(f"ALERTS{{{firing(b)}}}", instant=True, table=True)],
            hide=("Time", "Value", "__name__", "alertstate"),
            description="Every alert Prometheus is firing now, with its labels (not the always-firing Watchdog).",
            empty_by_design="no alert fires in a healthy system.",
            h=6,
        ),
    ]


def build(cfg):
    b = Board(cfg)
    # A second row of stats over the selected range follows the signals now.
    panels = signal_stats(b) + views.overview_summaries(b, QUEUE) + trend_panels(b) + pipeline_panels(b)
    queues = f"{EXPORTER_QUEUE_LENGTH}{b.selector('exporter')}"
    variables = [query_variable("queue", "Queue", f"label_values({queues}, queue_name)")]
    links = b.flower_links(
        ("Flower", "/"),
        ("Flower: tasks", "/tasks"),
        ("Flower: failed tasks", "/tasks?state=FAILURE"),
        ("Flower: broker", "/broker"),
    )
    return b.dashboard(
        "overview",
        "Celery / Overview",
        "Celery health at a glance: success rate, throughput, queues, workers, alerts.",
        panels,
        variables=variables,
        links=links,
    )
