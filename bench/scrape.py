"""How long the bundle's exporter takes to answer /metrics with three workers, as on the stack of
`WORKERS=3 make up`: the launcher (exporter/run_exporter.py) refreshes queue and worker metrics in a
background thread, so a scrape only renders the registry. Timed after some traffic, so that the
task series exist; best, median and worst of SCRAPES."""

import statistics
import time
from dataclasses import replace

import requests

from bench import measure
from bench.configs import CONFIGS, WorkerSpec
from bench.publisher import Publisher

SCRAPES = 10
WORKERS = 3
TASKS = 200


def timed_scrapes(url, count=SCRAPES):
    """Seconds of each of `count` GETs of url (every one must answer 200)."""
    seconds = []
    for _ in range(count):
        t = time.perf_counter()
        r = requests.get(url, timeout=30)
        seconds.append(time.perf_counter() - t)
        r.raise_for_status()
    return seconds


def exporter_on_three_workers(bench, say):
    config = replace(CONFIGS["full"], workers=tuple(WorkerSpec(index=i) for i in range(1, WORKERS + 1)))
    say(f"exporter scrape: the full bundle with {WORKERS} workers, {TASKS} tasks, then {SCRAPES} scrapes")
    bench.up(config)
    try:
        pub = Publisher(bench, "--kind", "add", "--count", TASKS, "--wait-go")
        pub.go()
        t_done = measure.wait_count(bench.counter, TASKS, timeout=120)
        pub.result(60)
        measure.catch_up(bench, TASKS, t_done)
        seconds = timed_scrapes(bench.exporter_url("/metrics"))
    finally:
        bench.down()
    return {
        "workers": WORKERS,
        "seconds": seconds,
        "best_s": min(seconds),
        "median_s": statistics.median(seconds),
        "worst_s": max(seconds),
    }
