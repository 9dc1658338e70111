"""Section fleet: what Flower, the exporter and Prometheus need for N workers, by simulation.

One machine cannot run a thousand workers, but it can send their events. For each worker count N
the bench starts the bundle's monitors (no real worker), and a simulator publishes into the event
exchange what N workers and their clients would: worker-online, a worker-heartbeat every 2 s per
worker (Celery's default), and per task task-sent / task-received / task-started and
task-succeeded or task-failed (1 in 50) with a runtime, round-robin over up to 1,000 task names and
50 queues, each task on a worker chosen at random, at a fixed task rate. Each event is its own
message (a real worker batches task events, so this is the heavier case for the broker; the
monitors handle each event alike).

Per N: CPU of Flower, the exporter and Prometheus during the publishing window (cores = CPU s / s),
their RSS, /metrics size and scrape time, the catch-up lag, events lost, and the event rate each
monitor could keep up with on one core (events/s published / cores used: each is a single-threaded
Python consumer). Prometheus's side (bench/fleet_budget.py): head series by source job, each
scrape against its timeout, each rule group against its interval, and at the largest N the query
time of the Overview dashboard's panels; then the cardinality budget's goals, met or not.
"""

import random
import statistics
import time
import uuid

import requests

from bench import fleet_budget, measure
from bench.configs import CONFIGS
from bench.probes import cpu_seconds, rss_bytes, samples
from bench.state import STATE, BenchError
from native import paths

HEARTBEAT_S = 2.0  # Celery's worker_heartbeat default: what the monitors' "worker up" logic expects
FAIL_EVERY = 50
SW = {"sw_ident": "py-celery", "sw_ver": "5.7.0", "sw_sys": "Linux"}


class Fleet:
    """N simulated workers and their task traffic, published through one event dispatcher."""

    def __init__(self, app, workers, names, queues, seed=1, url=None):
        self.app, self.url = app, url
        self.hosts = [f"sim-{i:04d}@fleet-{i // 8:03d}" for i in range(workers)]
        self.names = [f"fleet.task_{i:04d}" for i in range(names)]
        self.queues = [f"queue_{i:02d}" for i in range(queues)]
        self.rng = random.Random(seed)
        self.processed = {h: 0 for h in self.hosts}
        self.sent = 0

    def run(self, rate, seconds, stop=None):
        """Publish for `seconds` at `rate` tasks/s; returns (tasks, succeeded, events) published."""
        tasks = succeeded = events = 0
        # The bench vhost's URL, named: worker.settings may have read the broker URL at import,
        # before the bench pointed the environment at its vhost.
        with self.app.connection_for_write(self.url) as conn:
            disp = self.app.events.Dispatcher(conn, enabled=True, buffer_while_offline=False)

            def send(host, type_, **fields):
                disp.hostname = host
                disp.send(type_, **fields)

            for host in self.hosts:
                send(host, "worker-online", freq=HEARTBEAT_S, **SW)
                events += 1
            t0 = time.monotonic()
            next_beat = {h: t0 + self.rng.uniform(0, HEARTBEAT_S) for h in self.hosts}
            while not (stop and stop.is_set()):
                now = time.monotonic()
                if now - t0 >= seconds:
                    break
                for host in self.hosts:
                    if next_beat[host] <= now:
                        send(
                            host,
                            "worker-heartbeat",
                            freq=HEARTBEAT_S,
                            active=1,
                            processed=self.processed[host],
                            loadavg=[0.5, 0.5, 0.5],
                            **SW,
                        )
                        next_beat[host] += HEARTBEAT_S
                        events += 1
                due = int((now - t0) * rate) + 1
                if tasks >= due:
                    time.sleep(min(0.005, (tasks + 1) / rate - (now - t0)))
                    continue
                for _ in range(min(due - tasks, 200)):
                    ok = self._task(send, tasks)
                    events += 4
                    tasks += 1
                    succeeded += ok
        return tasks, succeeded, events

    def _task(self, send, i):
        """The four events of task i; True if it succeeded."""
        task_id = str(uuid.uuid4())
        name = self.names[i % len(self.names)]
        queue = self.queues[i % len(self.queues)]
        host = self.rng.choice(self.hosts)  # any worker runs any task: name x worker pairs grow with N
        runtime = self.rng.expovariate(1 / 0.05)
        send(
            "client@fleet-app",
            "task-sent",
            uuid=task_id,
            name=name,
            args="()",
            kwargs="{}",
            retries=0,
            eta=None,
            expires=None,
            queue=queue,
            exchange="",
            routing_key=queue,
            root_id=task_id,
            parent_id=None,
        )
        send(
            host,
            "task-received",
            uuid=task_id,
            name=name,
            args="()",
            kwargs="{}",
            root_id=task_id,
            parent_id=None,
            retries=0,
            eta=None,
            expires=None,
        )
        send(host, "task-started", uuid=task_id)
        self.processed[host] += 1
        if i % FAIL_EVERY == FAIL_EVERY - 1:
            send(
                host,
                "task-failed",
                uuid=task_id,
                exception="ValueError('simulated')",
                traceback="Traceback (most recent call last):\nValueError: simulated",
            )
            return False
        send(host, "task-succeeded", uuid=task_id, result="None", runtime=runtime)
        return True


def _timed(url, times=3):
    out, body = [], b""
    for _ in range(times):
        t = time.perf_counter()
        body = requests.get(url, timeout=60).content
        out.append(time.perf_counter() - t)
    return statistics.median(out), body


def series_by_label(text):
    """Sample count of a /metrics page, and how many distinct values each label has."""
    count, values = 0, {}
    for s in samples(text):
        count += 1
        for k, v in s.labels.items():
            values.setdefault(k, set()).add(v)
    return count, {k: len(v) for k, v in sorted(values.items())}


def one(bench, n, rate, seconds, names, queues, settle, say, largest=False):
    from bench import tasks

    bench.monitors_up(CONFIGS["full"])
    try:
        mixin_config = fleet_budget.use_mixin_config(bench, STATE, say)
        pids = {m: bench.pid(m) for m in ("flower", "exporter", "prometheus")}
        before = {m: cpu_seconds(pid) for m, pid in pids.items()}
        fleet = Fleet(tasks.app, n, names, queues, url=bench.url)
        started = time.time()
        t0 = time.monotonic()
        published, succeeded, events = fleet.run(rate, seconds)
        window = time.monotonic() - t0
        during = {m: cpu_seconds(pid) - before[m] for m, pid in pids.items()}
        t_done = time.time()
        caught = measure.catch_up(bench, succeeded, t_done, timeout=max(60.0, seconds * 2), stall=15.0)
        time.sleep(settle)  # scrapes of the final state (Prometheus scrapes every 5 s)
        point = {
            "workers": n,
            "mixin_config": mixin_config or "the bundle's",
            "task_rate": rate,
            "seconds": round(window, 1),
            "tasks": published,
            "events": events,
            "events_per_s": events / window,
            "names": min(names, published),
            "queues": min(queues, published),
        }
        for m in ("flower", "exporter"):
            scrape_s, body = _timed(bench.flower_url("/metrics") if m == "flower" else bench.exporter_url("/metrics"))
            count, labels = series_by_label(body.decode())
            cores = during[m] / window
            # CPU until it caught up (or gave up): a lagging monitor handles the window's events later.
            total = (caught[m]["cpu"] or 0) - before[m]
            point[m] = {
                "cpu_cores": cores,
                "cpu_ms_per_event": total * 1000 / events,
                "max_events_per_s_one_core": events / total if total > 0 else None,
                "rss_mb": rss_bytes(pids[m]) / 2**20,
                "metrics_bytes": len(body),
                "samples": count,
                "label_values": labels,
                "scrape_s": scrape_s,
                "lag_s": caught[m]["lag"],
                "succeeded_counted": caught[m]["count"],
                "events_lost_pct": 100.0 * (succeeded - (caught[m]["count"] or 0)) / max(1, succeeded),
            }
        point["prometheus"] = prometheus_side(bench, pids["prometheus"], during["prometheus"] / window, started)
        say(
            f"  fleet N={n:<5} {point['events_per_s']:7.0f} events/s  Flower {point['flower']['cpu_cores']:.2f} cores "
            f"{point['flower']['rss_mb']:.0f} MB  exporter {point['exporter']['cpu_cores']:.2f} cores "
            f"{point['exporter']['rss_mb']:.0f} MB  series {point['prometheus']['head_series']}"
        )
        fleet_budget.say_point(point, say)
        if largest:
            prom = fleet_budget.Prometheus(bench.prometheus_url(""))
            point["dashboard"] = fleet_budget.dashboard_query_times(prom, paths.REPO, started, time.time())
        return point
    finally:
        bench.down()


def prometheus_side(bench, pid, cpu_cores, started):
    """Prometheus's CPU and RSS, head series by job, scrapes and rule groups since `started`."""
    prom = fleet_budget.Prometheus(bench.prometheus_url(""))
    window_s = max(10, round(time.time() - started))
    groups = fleet_budget.rule_groups(prom, window_s)
    total, by_job = fleet_budget.head_series(prom)
    return {
        "cpu_cores": cpu_cores,
        "rss_mb": rss_bytes(pid) / 2**20,
        "head_series": total,
        "head_series_by_job": by_job,
        "scrapes": fleet_budget.scrapes(prom, window_s),
        "rule_groups": groups,
        "rule_eval_s": sum(g["last_s"] for g in groups.values()),
    }


def run(bench, workers, rate, seconds, names, queues, settle, say):
    points = []
    for n in workers:
        say(f"fleet: {n} simulated workers, {rate:g} tasks/s for {seconds:g} s, {names} names, {queues} queues")
        points.append(one(bench, n, rate, seconds, names, queues, settle, say, largest=n == workers[-1]))
    if not points:
        raise BenchError("no worker counts given")
    for point in points:
        point["goals"] = {
            what: {"value": v, "limit": limit, "met": ok} for what, v, limit, ok in fleet_budget.goals(point)
        }
    met = fleet_budget.say_goals(points, say)
    return {
        "goals": dict(fleet_budget.GOALS),
        "goals_met_at_largest": met,
        "task_rate": rate,
        "seconds": seconds,
        "names": names,
        "queues": queues,
        "heartbeat_s": HEARTBEAT_S,
        "points": points,
    }
