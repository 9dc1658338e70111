"""Measuring helpers shared by the sections: completion, monitor catch-up, CPU, summaries."""

import statistics
import threading
import time

import psutil
import requests

from bench import counter
from bench.probes import cpu_seconds
from bench.state import BenchError


def wait_count(path, n, timeout):
    """Poll the completion counter every 10 ms until n tasks finished; the time of the n-th."""
    deadline = time.monotonic() + timeout
    while True:
        count, last = counter.read(path)
        if count >= n:
            return last
        if time.monotonic() > deadline:
            raise BenchError(f"only {count} of {n} tasks finished within {timeout:.0f}s")
        time.sleep(0.01)


def catch_up(bench, n, t_done, timeout=120.0, stall=15.0):
    """Poll Flower's and the exporter's /metrics (each in its own thread, the exporter's takes ~2 s)
    until each counted n task-succeeded events, or its count stayed the same for `stall` seconds
    (events expired from its queue never come). Per monitor: lag after t_done (None when short),
    its CPU at that moment, and the last count seen (short of n when events were lost)."""
    probes = {"flower": bench.flower_succeeded, "exporter": bench.exporter_succeeded}
    result = {}

    def poll(name, probe):
        deadline = time.monotonic() + timeout
        seen, changed = None, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - changed < stall:
            try:
                now_seen = probe()
                if now_seen != seen:
                    seen, changed = now_seen, time.monotonic()
            except (requests.RequestException, ValueError):
                pass
            if seen is not None and seen >= n:
                now = time.time()
                result[name] = {"lag": max(0.0, now - t_done), "cpu": cpu_seconds(bench.pid(name)), "count": int(seen)}
                return
            time.sleep(0.2)
        result[name] = {"lag": None, "cpu": cpu_seconds(bench.pid(name)), "count": None if seen is None else int(seen)}

    threads = [threading.Thread(target=poll, args=item, daemon=True) for item in probes.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


def busy_cpu():
    """Machine-wide busy CPU seconds (all cores) minus this orchestrator's own (its polling): what
    is left after the bench's processes is other load on the machine."""
    t = psutil.cpu_times()
    own = psutil.Process().cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0) - own.user - own.system


def spread(values):
    """min / median / max of the values that exist, or None."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def background_load(seconds=2.0):
    """Share of the machine's cores busy right now (the bench is CPU-bound: other load skews it)."""
    return psutil.cpu_percent(interval=seconds) / 100.0


def steal_cpu():
    """CPU seconds the hypervisor gave to others (a VM's noisy neighbours make runs slower)."""
    return getattr(psutil.cpu_times(), "steal", 0.0)
