"""Celery / Workers: each worker by its full nodename (celery@host), with a link to its Flower page.

Our worker /metrics (job celery_worker) and Flower both label a worker by its full nodename
(`worker`), unlike celery-exporter's `hostname`, which collapses the workers of one host.
"""

from mixin import config
from mixin.dashboards import views
from mixin.dashboards.builder import (
    QUERIES, RATE, cpu_steps, dashboard, flower, link, override, query_variable, selector, stat, table,
    target, thresholds, timeseries, value_mapping, worker_cpu_ratio, worker_memory,
    worker_memory_growth,
)

WORKER = 'worker=~"$worker"'
PROCESSED = 'type=~"task-succeeded|task-failed"'
FLOWER_WORKER = flower("/worker/${__field.labels.worker}")
ONLINE = value_mapping({0: ("offline", "red"), 1: ("online", "green")})


def flower_metric(name, *matchers):
    return f"{name}{selector('flower', WORKER, *matchers)}"


def worker_metric(name):
    return f"{name}{selector('worker', WORKER)}"


def build():
    growth = config.THRESHOLDS["worker_memory_growth_bytes_per_s"]
    growth_window = config.THRESHOLDS["worker_memory_window"]
    pool_size = worker_metric("celery_worker_pool_processes")
    executing = flower_metric("flower_worker_number_of_currently_executing_tasks")
    waiting = flower_metric("flower_worker_prefetched_tasks")
    online = f"max by (worker) ({flower_metric('flower_worker_online')})"
    pool = f"sum by (worker) ({pool_size})"
    active = f"sum by (worker) ({executing})"
    prefetched = f"sum by (worker) ({waiting})"
    events = flower_metric("flower_events_total", PROCESSED)
    open_in_flower = [link("Open ${__field.labels.worker} in Flower", FLOWER_WORKER)]
    panels = [
        stat("Workers online", [target(f"sum({online})")],
             description="Workers Flower sees online (heartbeats).",
             steps=thresholds("red", (1, "green")), graph=False, w=6),
        stat("Pool processes", [target(f"sum({pool_size})")],
             description="Pool processes (concurrency) of the selected workers.", graph=False, w=6),
        stat("Active tasks", [target(f"sum({executing})")],
             description="Tasks executing now (from worker heartbeats).", w=6),
        stat("Prefetched tasks", [target(f"sum({waiting})")],
             description="Tasks received by workers and waiting there to start.", w=6),

        table("Workers", [
            target(online, instant=True, table=True),
            target(pool, instant=True, table=True),
            target(active, instant=True, table=True),
            target(prefetched, instant=True, table=True),
            target(f"sum by (worker) (increase({events}[$__range]))", instant=True, table=True),
            target(worker_cpu_ratio(WORKER), instant=True, table=True),
            target(worker_memory(WORKER), instant=True, table=True),
        ], columns={"worker": "Worker", "Value #A": "State", "Value #B": "Pool",
                    "Value #C": "Active", "Value #D": "Prefetched",
                    "Value #E": "Processed (range)", "Value #F": "CPU", "Value #G": "Memory"},
            description="One row per worker; click a name to open its Flower page.",
            # overrides apply after the renaming, so they name the renamed columns
            overrides=[
                override("Worker", links=[link("Open ${__value.raw} in Flower",
                                               flower("/worker/${__value.raw}"))]),
                override("State", mappings=ONLINE,
                         custom__cellOptions={"type": "color-background"}),
                override("CPU", unit="percentunit", thresholds=cpu_steps(),
                         custom__cellOptions={"type": "color-background"}),
                override("Memory", unit="bytes"),
            ], h=7),

        timeseries("CPU", [target(worker_cpu_ratio(WORKER), "{{worker}}")],
                   description="CPU of each worker's process tree as a share of the cores it may "
                               "use. The dashed line is the alert threshold "
                               f"({config.THRESHOLDS['worker_cpu_ratio_max']:.0%}).",
                   unit="percentunit", steps=cpu_steps(), threshold_line=True, min=0,
                   links=open_in_flower),
        timeseries("Memory", [target(worker_memory(WORKER), "{{worker}}")],
                   description="Resident memory of each worker's process tree (main process and "
                               "pool children).",
                   unit="bytes", min=0, links=open_in_flower),

        timeseries("Memory growth",
                   [target(worker_memory_growth(WORKER), "{{worker}}")],
                   description=f"Memory growth per second over {growth_window}. Sustained growth "
                               f"above the dashed line ({growth:.0f} B/s) alerts.",
                   unit="Bps", steps=thresholds("green", (growth, "red")), threshold_line=True,
                   links=open_in_flower),
        timeseries("Pool size and active tasks",
                   [target(pool, "{{worker}} pool"), target(active, "{{worker}} active")],
                   description="Pool processes against tasks executing; active at pool size means "
                               "the worker is saturated.",
                   links=open_in_flower),

        timeseries("Prefetched tasks per worker", [target(prefetched, "{{worker}}")],
                   description="Tasks a worker has received but not started (Flower).",
                   links=open_in_flower),
        timeseries("Processed tasks/s",
                   [target(f"sum by (worker, type) (rate({events}[{RATE}]))",
                           "{{worker}} {{type}}")],
                   description="Tasks finished per second by worker and outcome (Flower).",
                   unit="reqps", links=open_in_flower),
        timeseries("Pool process replacements",
                   [target(QUERIES.pool_replacements(RATE, WORKER, reason=".+", by="worker, reason"),
                           "{{worker}} {{reason}}")],
                   description="Pool processes replaced per interval: recycled at "
                               "worker_max_memory_per_child (or _tasks_per_child), or died (killed, "
                               "crashed). Each process recycled more than "
                               f"{config.THRESHOLDS['pool_recycling_per_process_max']} time(s) in "
                               f"{config.THRESHOLDS['pool_recycling_window']} alerts "
                               "(CeleryWorkerPoolRecycling): containment hides a fast leak from the memory trend.",
                   links=open_in_flower),
        timeseries("Largest pool process vs limit",
                   [target(QUERIES.largest_pool_process(WORKER, by="worker"), "{{worker}} largest"),
                    target(QUERIES.pool_process_memory_limit(WORKER, by="worker"), "{{worker}} limit")],
                   description="Resident memory of each worker's largest pool process against "
                               "worker_max_memory_per_child: over it, the process is replaced after its task.",
                   unit="bytes", min=0, links=open_in_flower),
    ]
    panels += views.worker_panels(WORKER)
    variables = [query_variable("worker", "Worker", f"label_values(celery_worker_pool_processes"
                                                    f"{selector('worker')}, worker)")]
    return dashboard("workers", "Celery / Workers",
                     "Per worker: CPU, memory, pool, active and prefetched tasks, online state.",
                     panels, variables=variables,
                     links=[link("Flower: workers", flower("/workers"))])
