"""Submitting: HTTP clients for the app and Prometheus, and a paced, concurrent submitter."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests


class Unreachable(Exception):
    """The app does not answer; the message says where and why."""


class ApiClient:
    """The app's JSON API. One requests.Session per thread: sessions are not thread-safe."""

    def __init__(self, base_url, timeout=10):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()

    @property
    def session(self):
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def check(self):
        try:
            r = self.session.get(f"{self.base_url}/healthz", timeout=5)
        except requests.RequestException as exc:
            raise Unreachable(f"cannot reach the app at --url {self.base_url} ({exc.__class__.__name__})") from None
        if r.status_code != 200:
            raise Unreachable(f"--url {self.base_url} is not the app: GET /healthz answered HTTP {r.status_code}")

    def submit(self, payload):
        """POST /api/tasks; returns (HTTP status or None when no answer, JSON body or {"error": ...})."""
        try:
            r = self.session.post(f"{self.base_url}/api/tasks", json=payload, timeout=self.timeout)
        except requests.RequestException as exc:
            return None, {"error": exc.__class__.__name__}
        try:
            body = r.json()
        except ValueError:
            body = None
        # Not the app's JSON (a proxy's error page, say): keep the start of the text as the error.
        return r.status_code, body if isinstance(body, dict) else {"error": r.text[:200]}

    def task(self, task_id):
        """GET /api/tasks/<id> (the result backend): the state body, or None if it did not answer."""
        try:
            r = self.session.get(f"{self.base_url}/api/tasks/{task_id}", timeout=self.timeout)
            return r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None


def firing_alerts(prometheus_url, timeout=5):
    """Names of the alerts firing now, sorted; raises Unreachable if Prometheus does not answer."""
    try:
        r = requests.get(f"{prometheus_url.rstrip('/')}/api/v1/alerts", timeout=timeout)
        r.raise_for_status()
        alerts = r.json()["data"]["alerts"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise Unreachable(f"Prometheus at {prometheus_url} did not answer ({exc.__class__.__name__})") from None
    return sorted({a["labels"]["alertname"] for a in alerts if a.get("state") == "firing"})


@dataclass
class SubmitStats:
    """What the submitter did; updated from its threads under `lock`."""

    submitted: int = 0
    requests: int = 0
    rejected_tasks: int = 0
    errors: dict = field(default_factory=dict)  # "HTTP 422: message" -> requests
    started: float | None = None  # monotonic
    last_sent: float | None = None  # monotonic time of the last accepted answer
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def seconds(self):
        if self.started is None or self.last_sent is None:
            return 0.0
        return self.last_sent - self.started


def submit_all(batches, send, concurrency, stop, clock=time.monotonic, sleep=time.sleep, on_start=None):
    """Send each batch when it is due (batch.due seconds after the start), at most `concurrency` at
    once, until all are sent or `stop` is set. When sending falls behind, late batches go at once, so
    the average rate still matches the plan. Waits for requests in flight before returning."""
    slots = threading.BoundedSemaphore(concurrency)
    start = clock()
    if on_start:
        on_start(start)

    def run(batch):
        try:
            send(batch)
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="submit") as pool:
        for batch in batches:
            # Sleep in short slices so that Ctrl-C (stop) is honoured quickly.
            while not stop.is_set() and (remaining := start + batch.due - clock()) > 0:
                sleep(min(remaining, 0.05))
            while not stop.is_set() and not slots.acquire(timeout=0.05):
                pass
            if stop.is_set():
                break
            pool.submit(run, batch)
