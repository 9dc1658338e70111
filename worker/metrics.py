"""The worker's own /metrics: CPU and memory of its whole process tree, labelled by full nodename.

No exporter in the field reports worker CPU or memory, and the celery-exporter strips `name@` from
hostnames, collapsing the workers of one host. This collector runs in the worker's main process and
measures main + pool children on every scrape, so values are never stale. Task latency by stage
(queue wait, prefetch wait, runtime: worker/latency.py) is served from the same registry.
"""

import logging
import os
import threading
from typing import NamedTuple

import psutil
from billiard.pool import EX_OK, EX_RECYCLE, RUN
from celery import signals
from celery.worker import state as worker_state
from prometheus_client import CollectorRegistry, disable_created_metrics, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from worker import latency, settings

log = logging.getLogger(__name__)


def cpu_limit_cores():
    """Cores this worker may use: cgroup v2 quota if set, else the CPUs it may run on."""
    override = os.environ.get("WORKER_CPU_LIMIT_CORES")
    if override:
        return float(override)
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    return float(len(os.sched_getaffinity(0)))


class PoolReplacements:
    """Pool processes the prefork pool replaced while running, by reason, from their exit codes:

    - recycled: the process left on purpose after a task, over worker_max_memory_per_child or at
      worker_max_tasks_per_child (billiard's EX_RECYCLE);
    - died: anything else, e.g. killed by the OOM killer, a hard time limit or `revoke --terminate`.
    A clean exit (0: shutdown, autoscaler shrinking the pool) is no replacement and is not counted.
    """

    REASONS = ("recycled", "died")

    def __init__(self):
        self.counts = dict.fromkeys(self.REASONS, 0)
        self._lock = threading.Lock()

    def record(self, exitcodes):
        with self._lock:
            for code in exitcodes:
                if code == EX_OK:
                    continue
                self.counts["recycled" if code == EX_RECYCLE else "died"] += 1

    def attach(self, pool):
        """Count from `pool` (Celery's prefork TaskPool, or a billiard Pool). False if it has no
        pool processes to count (solo, threads, ...)."""
        inner = pool if hasattr(pool, "_join_exited_workers") else getattr(pool, "_pool", None)
        join = getattr(inner, "_join_exited_workers", None)
        if join is None:
            return False

        def join_and_count(shutdown=False):
            exitcodes = join(shutdown=shutdown)
            if exitcodes and not shutdown and getattr(inner, "_state", RUN) == RUN:
                self.record(exitcodes)
            return exitcodes

        # billiard reaps exited pool processes here and replaces them right after.
        inner._join_exited_workers = join_and_count
        return True

    def snapshot(self):
        with self._lock:
            return dict(self.counts)


class TreeUsage(NamedTuple):
    cpu_seconds: float  # user+system of every process, plus the children the root already reaped
    rss_bytes: float  # sum of the resident memory of every process
    processes: int
    largest_child_rss_bytes: float  # the largest process below the root (a pool process)


def tree_usage(root):
    """CPU and memory of `root` and all its descendants (psutil.NoSuchProcess if root is gone)."""
    procs = [root] + root.children(recursive=True)
    cpu = rss = largest_child = 0.0
    for i, proc in enumerate(procs):
        try:
            times = proc.cpu_times()
            proc_rss = proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue  # a child replaced between listing and reading
        rss += proc_rss
        if i > 0:
            largest_child = max(largest_child, proc_rss)
        cpu += times.user + times.system
        if i == 0:
            # CPU of children that already exited (and were reaped) stays counted.
            cpu += times.children_user + times.children_system
    return TreeUsage(cpu, rss, len(procs), largest_child)


class WorkerProcessTreeCollector:
    def __init__(self, nodename, pool=None, root=None, replacements=None):
        self.nodename = nodename
        self.pool = pool
        self.root = root or psutil.Process()
        self.limit = cpu_limit_cores()
        self.replacements = replacements

    def collect(self):
        try:
            cpu, rss, processes, largest_child = tree_usage(self.root)
        except psutil.NoSuchProcess:
            cpu, rss, processes, largest_child = 0.0, 0.0, 0, 0.0
        labels = [self.nodename]
        c = CounterMetricFamily(
            "celery_worker_cpu_seconds", "CPU seconds (user+system) of the worker's process tree", labels=["worker"]
        )
        c.add_metric(labels, cpu)
        yield c
        g = GaugeMetricFamily(
            "celery_worker_memory_rss_bytes",
            "Resident memory of the worker's process tree (sum of RSS)",
            labels=["worker"],
        )
        g.add_metric(labels, rss)
        yield g
        g = GaugeMetricFamily(
            "celery_worker_cpu_limit_cores", "Cores the worker may use: 100% CPU utilisation", labels=["worker"]
        )
        g.add_metric(labels, self.limit)
        yield g
        g = GaugeMetricFamily(
            "celery_worker_processes", "Processes in the worker's tree (main + pool)", labels=["worker"]
        )
        g.add_metric(labels, processes)
        yield g
        size = getattr(self.pool, "num_processes", None) if self.pool is not None else None
        if size is not None:
            g = GaugeMetricFamily("celery_worker_pool_processes", "Pool size (processes or threads)", labels=["worker"])
            g.add_metric(labels, size)
            yield g
        g = GaugeMetricFamily(
            "celery_worker_pool_process_max_rss_bytes",
            "Resident memory of the largest process below the worker's main process",
            labels=["worker"],
        )
        g.add_metric(labels, largest_child)
        yield g
        g = GaugeMetricFamily(
            "celery_worker_max_memory_per_child_bytes",
            "worker_max_memory_per_child: a pool process above it is replaced after its task (0 = no limit)",
            labels=["worker"],
        )
        g.add_metric(labels, settings.WORKER_MAX_MEMORY_PER_CHILD_MB * 1024 * 1024)
        yield g
        # Counted where the worker sends each task-started event (Request.on_accepted), so the events
        # Flower and the exporter counted can be checked against it: a shortfall is lost events.
        c = CounterMetricFamily(
            "celery_worker_tasks_started", "Tasks this worker started (one task-started event each)", labels=["worker"]
        )
        c.add_metric(labels, worker_state.all_total_count[0])
        yield c
        if self.replacements is not None:
            c = CounterMetricFamily(
                "celery_worker_pool_process_replacements",
                "Pool processes replaced while the worker ran, by reason: recycled (over "
                "worker_max_memory_per_child or at worker_max_tasks_per_child) or died (killed, crashed)",
                labels=["worker", "reason"],
            )
            for reason, count in self.replacements.snapshot().items():
                c.add_metric([self.nodename, reason], count)
            yield c


def serve(nodename, pool=None, addr=None, port=None):
    # No `*_created` series: the latency histograms would carry one per label set (read by nothing).
    disable_created_metrics()
    replacements = PoolReplacements()
    if pool is None or not replacements.attach(pool):
        replacements = None
    registry = CollectorRegistry()
    registry.register(WorkerProcessTreeCollector(nodename, pool, replacements=replacements))
    latency.register(registry)  # task latency by stage, if this worker measures it
    addr = addr or settings.WORKER_METRICS_ADDR
    port = port or settings.WORKER_METRICS_PORT
    start_http_server(port, addr=addr, registry=registry)
    log.info("worker metrics for %s on http://%s:%s/metrics", nodename, addr, port)
    return registry


@signals.worker_ready.connect
def _start_on_worker_ready(sender, **_):
    # worker_ready fires once, in the main process, after the pool started.
    if os.environ.get("WORKER_METRICS", "1") == "0":
        return
    serve(sender.hostname, getattr(sender, "pool", None))
