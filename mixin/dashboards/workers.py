"""Celery / Workers: each worker by its full nodename (celery@host), with a link to its Flower page.

Our worker /metrics (job celery_worker) and Flower both label a worker by its full nodename
(`worker`), unlike celery-exporter's `hostname`, which collapses the workers of one host.
"""

from mixin.dashboards import views
from mixin.queries import PROCESSED
from mixin.dashboards.builder import (
    RATE,
    Board,
    override,
    query_variable,
    stat,
    table,
    target,
    thresholds,
    timeseries,
    value_mapping,
)

WORKER = 'worker=~"$worker"'
ONLINE = value_mapping({0: ("offline", "red"), 1: ("online", "green")})


class Series:
    """The per-worker expressions the panels share, over the worker variable."""

    def __init__(self, b):
        def flower_metric(name):
            return f"{name}{b.selector('flower', WORKER)}"

        self.pool_size = b.q.pool_processes_series(WORKER)
        self.executing = flower_metric("flower_worker_number_of_currently_executing_tasks")
        self.waiting = flower_metric("flower_worker_prefetched_tasks")
        self.online = f"max by (worker) ({b.q.flower_worker_online(WORKER)})"
        self.pool = b.q.pool_processes(WORKER, by="worker")
        self.active = f"sum by (worker) ({self.executing})"
        self.prefetched = f"sum by (worker) ({self.waiting})"
        # Tasks each worker finished, by outcome: Flower's count per worker (a record when Flower's
        # series are per task name as well: cardinality.flower_task_series).
        self.processed_rate = b.r.flower_worker_events(WORKER, PROCESSED)
        self.processed_in_range = b.r.flower_worker_events_in_range("$__range", "$__range_s", WORKER)


def state_panels(b, s):
    """Counts, and one table row per worker."""
    return [
        stat(
            "Workers online",
            [target(f"sum({s.online})")],
            description="Workers Flower sees online (heartbeats).",
            steps=thresholds("red", (1, "green")),
            graph=False,
            w=6,
        ),
        stat(
            "Pool processes",
            [target(f"sum({s.pool_size})")],
            description="Pool processes (concurrency) of the selected workers.",
            graph=False,
            w=6,
        ),
        stat(
            "Active tasks",
            [target(f"sum({s.executing})")],
            description="Tasks executing now (from worker heartbeats).",
            w=6,
        ),
        stat(
            "Prefetched tasks",
            [target(f"sum({s.waiting})")],
            description="Tasks received by workers and waiting there to start.",
            w=6,
        ),
        table(
            "Workers",
            [
                target(s.online, instant=True, table=True),
                target(s.pool, instant=True, table=True),
                target(s.active, instant=True, table=True),
                target(s.prefetched, instant=True, table=True),
                target(s.processed_in_range, instant=True, table=True),
                target(b.r.worker_cpu_ratio(WORKER), instant=True, table=True),
                target(b.worker_memory(WORKER), instant=True, table=True),
            ],
            columns={
                "worker": "Worker",
                "Value #A": "State",
                "Value #B": "Pool",
                "Value #C": "Active",
                "Value #D": "Prefetched",
                "Value #E": "Processed (range)",
                "Value #F": "CPU",
                "Value #G": "Memory",
            },
            description="One row per worker; click a name to open its Flower page.",
            # overrides apply after the renaming, so they name the renamed columns
            overrides=[
                override("Worker", links=b.flower_links(("Open ${__value.raw} in Flower", "/worker/${__value.raw}"))),
                override("State", mappings=ONLINE, custom__cellOptions={"type": "color-background"}),
                override(
                    "CPU",
                    unit="percentunit",
                    thresholds=b.cpu_steps(),
                    custom__cellOptions={"type": "color-background"},
                ),
                override("Memory", unit="bytes"),
            ],
            h=7,
        ),
    ]


def resource_panels(b, s, open_in_flower):
    """CPU, memory and its trend, pool saturation, prefetched and processed tasks."""
    growth = b.t.worker_memory_growth_bytes_per_s
    return [
        timeseries(
            "CPU",
            [target(b.r.worker_cpu_ratio(WORKER), "{{worker}}")],
            description="CPU of each worker's process tree as a share of the cores it may "
            "use. The dashed line is the alert threshold "
            f"({b.t.worker_cpu_ratio_max:.0%}).",
            unit="percentunit",
            steps=b.cpu_steps(),
            threshold_line=True,
            minimum=0,
            links=open_in_flower,
        ),
        timeseries(
            "Memory",
            [target(b.worker_memory(WORKER), "{{worker}}")],
            description="Resident memory of each worker's process tree (main process and pool children).",
            unit="bytes",
            minimum=0,
            links=open_in_flower,
        ),
        timeseries(
            "Memory growth",
            [target(b.worker_memory_growth(WORKER), "{{worker}}")],
            description=f"Memory growth per second over {b.t.worker_memory_window}. Sustained "
            f"growth above the dashed line ({growth:.0f} B/s) alerts.",
            unit="Bps",
            steps=thresholds("green", (growth, "red")),
            threshold_line=True,
            links=open_in_flower,
        ),
        timeseries(
            "Pool size and active tasks",
            [target(s.pool, "{{worker}} pool"), target(s.active, "{{worker}} active")],
            description="Pool processes against tasks executing; active at pool size means the worker is saturated.",
            links=open_in_flower,
        ),
        timeseries(
            "Prefetched tasks per worker",
            [target(s.prefetched, "{{worker}}")],
            description="Tasks a worker has received but not started (Flower).",
            links=open_in_flower,
        ),
        timeseries(
            "Processed tasks/s",
            [target(s.processed_rate, "{{worker}} {{type}}")],
            description="Tasks finished per second by worker and outcome (Flower).",
            unit="reqps",
            links=open_in_flower,
        ),
    ]


def pool_panels(b, open_in_flower):
    """Pool processes replaced, and the largest against its memory limit."""
    return [
        timeseries(
            "Pool process replacements",
            [target(b.q.pool_replacements(RATE, WORKER, reason=".+", by="worker, reason"), "{{worker}} {{reason}}")],
            description="Pool processes replaced per interval: recycled at "
            "worker_max_memory_per_child (or _tasks_per_child), or died (killed, "
            "crashed). Each process recycled more than "
            f"{b.t.pool_recycling_per_process_max} time(s) in "
            f"{b.t.pool_recycling_window} alerts "
            "(CeleryWorkerPoolRecycling): containment hides a fast leak from the memory trend.",
            links=open_in_flower,
        ),
        timeseries(
            "Largest pool process vs limit",
            [
                target(b.q.largest_pool_process(WORKER, by="worker"), "{{worker}} largest"),
                target(b.q.pool_process_memory_limit(WORKER, by="worker"), "{{worker}} limit"),
            ],
            description="Resident memory of each worker's largest pool process against "
            "worker_max_memory_per_child: over it, the process is replaced after its task.",
            unit="bytes",
            minimum=0,
            links=open_in_flower,
        ),
    ]


def build(cfg):
    b = Board(cfg)
    s = Series(b)
    open_in_flower = b.flower_links(("Open ${__field.labels.worker} in Flower", "/worker/${__field.labels.worker}"))
    panels = (
        state_panels(b, s)
        + resource_panels(b, s, open_in_flower)
        + pool_panels(b, open_in_flower)
        + views.worker_panels(b, WORKER)
    )
    variables = [query_variable("worker", "Worker", f"label_values({b.q.pool_processes_series()}, worker)")]
    return b.dashboard(
        "workers",
        "Celery / Workers",
        "Per worker: CPU, memory, pool, active and prefetched tasks, online state.",
        panels,
        variables=variables,
        links=b.flower_links(("Flower: workers", "/workers")),
    )
