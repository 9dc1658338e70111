"""Reading processes and endpoints: CPU and memory through psutil, Prometheus text pages, polling."""

import time

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.state import LOGS, BenchError


def cpu_seconds(pid, tree=False):
    """user+system CPU of a process; tree adds its live children and the reaped ones."""
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        if tree:  # the worker's own collector: main + pool children + reaped children
            # (imported here: worker.settings reads RMQ_URL at import, after the Bench has set it)
            from worker.metrics import tree_usage

            return tree_usage(proc).cpu_seconds
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.NoSuchProcess:
        return None


def rss_bytes(pid):
    try:
        return psutil.Process(pid).memory_info().rss
    except (psutil.NoSuchProcess, ValueError, TypeError):
        return None


def listener_pid(port):
    """The process listening on a TCP port (RabbitMQ's beam.smp for the AMQP port)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def samples(text):
    for family in text_string_to_metric_families(text):
        yield from family.samples


def metric_sum(url, sample, timeout=15, **labels):
    """Sum of the samples named `sample` whose labels match, from a /metrics page."""
    text = requests.get(url, timeout=timeout).text
    return sum(
        s.value for s in samples(text) if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def wait_until(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (requests.RequestException, ValueError, OSError):
            pass
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what} (logs in {LOGS})")


def http_ok(url):
    return requests.get(url, timeout=2).status_code == 200
