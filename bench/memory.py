"""Section 3: Flower's and the exporter's resident memory after N tasks over K task names, and the
time of one /metrics scrape of each (with the bundle's defaults, e.g. Flower's max_tasks).

Per name count a fresh full bundle; tasks are streamed cumulatively up to each point, then, once both
monitors counted every task and `settle` seconds passed, RSS is read and each /metrics is fetched
SCRAPES times, alternating.
"""

import statistics
import time

import requests
import yaml

from bench import measure
from bench.configs import CONFIGS
from bench.probes import rss_bytes
from bench.publisher import Publisher
from mixin.config import Config
from mixin.durations import seconds
from native import paths

SCRAPES = 5
# Each monitor's Prometheus job.
JOBS = {"flower": Config().jobs.flower, "exporter": Config().jobs.exporter}


def timed_get(url):
    t = time.perf_counter()
    r = requests.get(url, timeout=30)
    return time.perf_counter() - t, r.content


def prometheus_scrape_seconds(bench, job):
    try:
        r = requests.get(
            bench.prometheus_url("/api/v1/query"),
            timeout=5,
            params={"query": f'scrape_duration_seconds{{job="{job}"}}'},
        ).json()
        return float(r["data"]["result"][0]["value"][1])
    except (requests.RequestException, ValueError, KeyError, IndexError):
        return None


def point(bench, n):
    rows = {}
    times = {"flower": [], "exporter": []}
    body = {}
    for _ in range(SCRAPES):
        for monitor, url in (("flower", bench.flower_url("/metrics")), ("exporter", bench.exporter_url("/metrics"))):
            seconds, content = timed_get(url)
            times[monitor].append(seconds)
            body[monitor] = content
    for monitor, job in JOBS.items():
        text = body[monitor].decode()
        rows[monitor] = {
            "rss_mb": rss_bytes(bench.pid(monitor)) / 2**20,
            "scrape_s": {
                "min": min(times[monitor]),
                "median": statistics.median(times[monitor]),
                "max": max(times[monitor]),
            },
            "prometheus_scrape_s": prometheus_scrape_seconds(bench, job),
            "samples": sum(1 for line in text.splitlines() if line and not line.startswith("#")),
            "bytes": len(body[monitor]),
        }
    return rows


def scrape_timeouts():
    """Each monitor's scrape_timeout in the bundle's prometheus.yml: what a scrape must stay inside."""
    prom = yaml.safe_load((paths.REPO / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    return {m: seconds(jobs[job].get("scrape_timeout", prom["global"]["scrape_timeout"])) for m, job in JOBS.items()}


def run(bench, points, names, settle, say):
    timeouts = scrape_timeouts()
    say(f"memory: points {', '.join(map(str, points))} tasks x {', '.join(map(str, names))} task names")
    results = []
    for k in names:
        bench.up(CONFIGS["full"], names=k)
        try:
            done = 0
            for n in points:
                pub = Publisher(bench, "--kind", "named", "--count", n - done, "--wait-go")
                t0 = pub.go()
                t_done = measure.wait_count(bench.counter, n, timeout=max(120.0, (n - done) / 20))
                pub.result(60)
                caught = measure.catch_up(bench, n, t_done)
                time.sleep(settle)
                row = point(bench, n)
                for m in row:
                    row[m]["caught_up"] = caught[m]["lag"] is not None
                    row[m]["scrape_timeout_s"] = timeouts[m]
                results.append({"tasks": n, "names": k, "stream_rate": (n - done) / (t_done - t0), **row})
                say(
                    f"  {k} names, {n} tasks: Flower {row['flower']['rss_mb']:.0f} MB "
                    f"({row['flower']['scrape_s']['median'] * 1000:.0f} ms/scrape), exporter "
                    f"{row['exporter']['rss_mb']:.0f} MB ({row['exporter']['scrape_s']['median']:.2f} s/scrape)"
                )
                done = n
        finally:
            bench.down()
    return {"points": results, "settle_s": settle}
