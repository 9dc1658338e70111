"""The worker's own /metrics: CPU and memory of its whole process tree, labelled by full nodename.

No exporter in the field reports worker CPU or memory, and the celery-exporter strips `name@` from
hostnames, collapsing the workers of one host. This collector runs in the worker's main process and
measures main + pool children on every scrape, so values are never stale.
"""
import logging
import os
from typing import NamedTuple

import psutil
from celery import signals
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from worker import settings

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


class TreeUsage(NamedTuple):
    cpu_seconds: float  # user+system of every process, plus the children the root already reaped
    rss_bytes: float    # sum of the resident memory of every process
    processes: int


def tree_usage(root):
    """CPU and memory of `root` and all its descendants (psutil.NoSuchProcess if root is gone)."""
    procs = [root] + root.children(recursive=True)
    cpu = rss = 0.0
    for i, proc in enumerate(procs):
        try:
            times = proc.cpu_times()
            rss += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue  # a child replaced between listing and reading
        cpu += times.user + times.system
        if i == 0:
            # CPU of children that already exited (and were reaped) stays counted.
            cpu += times.children_user + times.children_system
    return TreeUsage(cpu, rss, len(procs))


class WorkerProcessTreeCollector:
    def __init__(self, nodename, pool=None, root=None):
        self.nodename = nodename
        self.pool = pool
        self.root = root or psutil.Process()
        self.limit = cpu_limit_cores()

    def collect(self):
        try:
            cpu, rss, processes = tree_usage(self.root)
        except psutil.NoSuchProcess:
            cpu, rss, processes = 0.0, 0.0, 0
        labels = [self.nodename]
        c = CounterMetricFamily("celery_worker_cpu_seconds", "CPU seconds (user+system) of the worker's process tree", labels=["worker"])
        c.add_metric(labels, cpu)
        yield c
        g = GaugeMetricFamily("celery_worker_memory_rss_bytes", "Resident memory of the worker's process tree (sum of RSS)", labels=["worker"])
        g.add_metric(labels, rss)
        yield g
        g = GaugeMetricFamily("celery_worker_cpu_limit_cores", "Cores the worker may use: 100% CPU utilisation", labels=["worker"])
        g.add_metric(labels, self.limit)
        yield g
        g = GaugeMetricFamily("celery_worker_processes", "Processes in the worker's tree (main + pool)", labels=["worker"])
        g.add_metric(labels, processes)
        yield g
        size = getattr(self.pool, "num_processes", None) if self.pool is not None else None
        if size is not None:
            g = GaugeMetricFamily("celery_worker_pool_processes", "Pool size (processes or threads)", labels=["worker"])
            g.add_metric(labels, size)
            yield g


def serve(nodename, pool=None, addr=None, port=None):
    registry = CollectorRegistry()
    registry.register(WorkerProcessTreeCollector(nodename, pool))
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
