"""Small helpers for tests against the live native stack."""

import os
import shutil
import subprocess
import sys
import threading
import time

import requests

from native import poll
from native.ports import PORTS

PROMETHEUS = f"http://127.0.0.1:{PORTS['prometheus']}"
APP = f"http://127.0.0.1:{PORTS['app']}"
FLOWER = f"http://127.0.0.1:{PORTS['flower']}"
ALERTMANAGER = f"http://127.0.0.1:{PORTS['alertmanager']}"

STACK_WORKERS = 3
# The stack under test runs the "fast" alerting profile (native/derive.py), and gives each of its
# 3 workers a budget of half a core (they share 2 cores), so that a CPU-bound task exceeds it
# clearly even on a busy machine.
STACK_ENV = {"ALERT_PROFILE": "fast", "WORKER_CPU_LIMIT_CORES": "0.5"}
# The stack's own workers (celery_worker-<i>@<host>-<i>, i = 1..STACK_WORKERS), as Flower's `worker`
# and celery-exporter's `hostname` label them. Workers a scaling test added and removed, and other
# tests' probe workers, keep series until Flower or the exporter purges them, mid-test.
_INDICES = "|".join(str(i) for i in range(1, STACK_WORKERS + 1))
FLOWER_STACK_WORKERS = f'worker=~"celery_worker-({_INDICES})@.+"'
EXPORTER_STACK_WORKERS = f'hostname=~".+-({_INDICES})"'


def forget_earlier_stacks():
    """Before a test session starts a stack: empty Alertmanager's and Prometheus's data. Alertmanager
    remembers what it told receivers across restarts and would not repeat a "firing" an earlier stack
    left unresolved; Prometheus writes no staleness markers at shutdown, so a stack stopped less than
    5 minutes ago would leave its last samples (same job and worker labels) in every query."""
    from native import paths

    for data in ("alertmanager", "prometheus"):
        shutil.rmtree(paths.DATA / data, ignore_errors=True)


def native_cli(*args, timeout=300):
    """`python -m native ...` as the test session runs it (make up/down/status)."""
    return subprocess.run(
        [sys.executable, "-m", "native", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **STACK_ENV},
    )


def wait_for(predicate, timeout, interval=0.5, message="condition"):
    """Poll until predicate() returns a truthy value; return it, or fail naming the condition."""
    try:
        return poll.until(predicate, timeout, interval, message)
    except poll.TimedOut as exc:
        raise AssertionError(str(exc)) from None


def prom_query(expr, at=None):
    """Instant query, now or at the Unix time `at`."""
    params = {"query": expr} if at is None else {"query": expr, "time": at}
    r = requests.get(f"{PROMETHEUS}/api/v1/query", params=params, timeout=10)
    body = r.json()
    assert body.get("status") == "success", f"query failed: {expr}: {body}"
    return body["data"]["result"]


def prom_scalar(expr, default=0.0, at=None):
    result = prom_query(expr, at)
    return float(result[0]["value"][1]) if result else default


def settled(*exprs, quiet=12.0, timeout=120):
    """The values of exprs once none changed for `quiet` seconds (longer than the slowest scrape
    interval), so that counts from earlier tests are all in before a test counts its own.
    One expr gives its value; several give {expr: value}."""
    values, since = {e: prom_scalar(e) for e in exprs}, time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        now = {e: prom_scalar(e) for e in exprs}
        if now != values:
            values, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return values[exprs[0]] if len(exprs) == 1 else values
    raise AssertionError(f"{exprs} kept changing for {timeout}s")


def submit(**fields):
    r = requests.post(f"{APP}/api/tasks", json=fields, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()["task_ids"]


def task_state(task_id):
    return requests.get(f"{APP}/api/tasks/{task_id}", timeout=10).json()


def flower_task(task_id):
    """Flower's view of the task ({} while Flower has not seen its events: a plain-text 404). The
    workers send their task events in batches (worker/events.py), so Flower may learn of a task a
    moment after the app reports it finished."""
    r = requests.get(f"{FLOWER}/api/task/info/{task_id}", timeout=10)
    if r.status_code == 404:
        return {}
    assert r.status_code == 200, f"Flower's task info: {r.status_code} {r.text[:200]}"
    return r.json()


def wait_finished(ids, timeout):
    """Wait until every task is SUCCESS or FAILURE; return {id: state body}."""
    done = {}

    def all_done():
        for task_id in ids:
            if task_id not in done:
                body = task_state(task_id)
                if body["state"] in ("SUCCESS", "FAILURE", "REVOKED"):
                    done[task_id] = body
        return len(done) == len(ids)

    wait_for(all_done, timeout, message=f"{len(ids)} tasks to finish")
    return done


class SteadyLoad:
    """Submit `fields` through the API at `rate` requests per second until stopped, keeping what the
    app answered: the ids it accepted (202), its 503 bodies, and anything else."""

    def __init__(self, rate, **fields):
        self.interval, self.fields = 1.0 / rate, {"count": 1, **fields}
        self.ids, self.unavailable, self.other = [], [], []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            try:
                r = requests.post(f"{APP}/api/tasks", json=self.fields, timeout=30)
            except requests.RequestException as exc:
                self.other.append(repr(exc))
            else:
                if r.status_code == 202:
                    self.ids += r.json()["task_ids"]
                elif r.status_code == 503:
                    self.unavailable.append(r.json())  # must be JSON, not a traceback
                else:
                    self.other.append((r.status_code, r.text[:200]))
            next_at += self.interval
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def start(self):
        self.thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_event.set()
        self.thread.join(60)
