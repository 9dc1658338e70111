"""Celery / Overview: is Celery healthy, and if not, where? The guide's five signals in one look."""

from mixin import config
from mixin.dashboards import views
from mixin.dashboards.builder import (
    SCOPE,
    RATE, bargauge, cpu_steps, dashboard, events_lost_ratio, finished_rate, flower, gauge, link, query_variable,
    runtime_quantile, selector, stat, success_ratio, success_steps, table, target, thresholds,
    timeseries, worker_cpu_ratio, worker_memory, queue_depth,
)

QUEUE = 'queue_name=~"$queue"'
# The Watchdog (severity "none") always fires to prove the pipeline works; it is not a problem.
FIRING = f'alertstate="firing", severity!="none", {SCOPE}'
WITH_EXCEPTION = 'exception!=""'  # the exporter adds exception="" series at zero
OFFSET = config.THRESHOLDS["throughput_baseline_offset"]
# When the baseline window has no data yet (a stack younger than OFFSET), the panel falls back to
# this long-window average and its legend says so.
BASELINE_FALLBACK_WINDOW = "1h"


def throughput(window=RATE, offset=""):
    return finished_rate(QUEUE, window=window, offset=offset)


def baseline():
    earlier = f"same time {OFFSET} earlier"
    fallback = f"{BASELINE_FALLBACK_WINDOW} average (no data {OFFSET} earlier yet)"
    return (f'label_replace({throughput(offset=OFFSET)}, "baseline", "{earlier}", "", "")'
            f' or on() label_replace({throughput(BASELINE_FALLBACK_WINDOW)},'
            f' "baseline", "{fallback}", "", "")')


def build():
    window = config.THRESHOLDS["success_window"]
    backlog = config.THRESHOLDS["queue_backlog_max"]
    backlog_steps = thresholds("green", (1, "yellow"), (backlog, "red"))
    ready = 'queue=~"$queue"'
    failed = f"celery_task_failed_total{selector('exporter', QUEUE, WITH_EXCEPTION)}"
    panels = [
        stat("Success rate", [target(success_ratio(QUEUE, window=window))],
             description=f"Succeeded / (succeeded + failed) over {window}, as the alert "
                         f"computes it. "
                         f"Red below {config.THRESHOLDS['success_ratio_min']:.0%}.",
             unit="percentunit", steps=success_steps(), min=0, max=1),
        stat("Tasks/s", [target(throughput())],
             description="Tasks finished (succeeded or failed) per second."),
        stat("Queue depth", [target(f"sum({queue_depth(ready)})")],
             description=f"Messages waiting in the Celery queues. Target 0; a backlog above "
                         f"{backlog} for {config.THRESHOLDS['queue_backlog_for']} alerts.",
             steps=backlog_steps),
        stat("Workers online", [target(f"sum(flower_worker_online{selector('flower')})")],
             description="Workers Flower sees online (heartbeats).",
             steps=thresholds("red", (1, "green")), graph=False),
        gauge("Busiest worker CPU", [target(f"max({worker_cpu_ratio()})")],
              description="The highest CPU use of any worker, as a share of the cores it may use.",
              unit="percentunit", steps=cpu_steps(), min=0, max=1),
        stat("Alerts firing", [target(f'count(ALERTS{{{FIRING}}}) or vector(0)')],
             description="Prometheus alerts firing now; the table below lists them.",
             steps=thresholds("green", (1, "red")), graph=False),

        timeseries(f"Tasks/s now vs {OFFSET} earlier",
                   [target(throughput(), "now"), target(baseline(), "{{baseline}}")],
                   description=f"Finished tasks per second against the same time {OFFSET} earlier "
                               f"(or the {BASELINE_FALLBACK_WINDOW} average while there is no "
                               f"data that old). The alert fires below "
                               f"{config.THRESHOLDS['throughput_ratio_min']:.0%} of the baseline.",
                   unit="reqps"),
        timeseries("Queue depth per queue",
                   [target(queue_depth(ready), "{{queue}}")],
                   description=f"Ready messages per queue. Target 0; the dashed line is the "
                               f"backlog threshold ({backlog}).",
                   steps=thresholds("green", (backlog, "red")), threshold_line=True),

        timeseries("Worker CPU", [target(worker_cpu_ratio(), "{{worker}}")],
                   description="CPU of each worker's process tree (main process and pool children) "
                               "as a share of the cores it may use. The dashed line is the alert "
                               f"threshold ({config.THRESHOLDS['worker_cpu_ratio_max']:.0%}).",
                   unit="percentunit", steps=cpu_steps(), threshold_line=True, min=0,
                   links=[link("Open ${__field.labels.worker} in Flower",
                               flower("/worker/${__field.labels.worker}"))]),
        timeseries("Worker memory", [target(worker_memory(), "{{worker}}")],
                   description="Resident memory of each worker's process tree. It should be flat; "
                               "steady growth alerts.",
                   unit="bytes", min=0,
                   links=[link("Open ${__field.labels.worker} in Flower",
                               flower("/worker/${__field.labels.worker}"))]),

        timeseries("Task runtime", [target(runtime_quantile(q, QUEUE), f"p{round(q * 100)}")
                                    for q in (0.5, 0.95, 0.99)],
                   description="Runtime quantiles of successful tasks (celery-exporter histogram).",
                   unit="s"),
        bargauge("Failures by exception",
                 [target(f"sort_desc(sum by (exception) (increase({failed}[$__range])))",
                         "{{exception}}", instant=True)],
                 description="Failed tasks in the selected time range, by exception class.",
                 steps=thresholds("red"),
                 links=[link("Failed tasks in Flower", flower("/tasks?state=FAILURE"))]),

        timeseries("Events lost per monitor", [target(events_lost_ratio(), "{{job}}")],
                   description=f"Share of the tasks the workers started (their own count) whose "
                               f"task-started event Flower or the exporter did not count, over "
                               f"{config.THRESHOLDS['events_lost_window']}. Near 0 (below 0 when the "
                               f"monitor also sees workers without their own /metrics); the dashed "
                               f"line is the alert threshold "
                               f"({config.THRESHOLDS['events_lost_ratio_max']:.0%}).",
                   unit="percentunit", steps=thresholds("green", (config.THRESHOLDS["events_lost_ratio_max"], "red")),
                   threshold_line=True, w=24, h=6),
        table("Firing alerts", [target(f'ALERTS{{{FIRING}}}', instant=True, table=True)],
              hide=("Time", "Value", "__name__", "alertstate"),
              description="Every alert Prometheus is firing now, with its labels (not the "
                          "always-firing Watchdog).",
              empty_by_design="no alert fires in a healthy system.", h=6),
    ]
    panels[6:6] = views.overview_summaries(QUEUE)  # a second row of stats, over the range
    variables = [query_variable("queue", "Queue", f"label_values(celery_queue_length"
                                                  f"{selector('exporter')}, queue_name)")]
    links = [link("Flower", flower("/")), link("Flower: tasks", flower("/tasks")),
             link("Flower: failed tasks", flower("/tasks?state=FAILURE")),
             link("Flower: broker", flower("/broker"))]
    return dashboard("overview", "Celery / Overview",
                     "Celery health at a glance: success rate, throughput, queues, workers, "
                     "alerts.",
                     panels, variables=variables, links=links)
