"""The whole run against an in-memory fake of the app: summary, rejections, lost tasks, no Prometheus."""

import itertools

from loadtest import cli
from loadtest.runner import Unreachable
from loadtest.scenarios import FAILURE_SHARE, resolve
from loadtest.tracker import FINISHED


class FakeApp:
    """Accepts tasks and reports them finished (every `fail`-flagged one as SimulatedTaskError)."""

    def __init__(self, reject_after=None, finish=True):
        self.base_url = "http://fake"
        self.ids = itertools.count()
        self.tasks = {}
        self.requests = 0
        self.reject_after = reject_after
        self.finish = finish

    def submit(self, payload):
        self.requests += 1
        if self.reject_after is not None and self.requests > self.reject_after:
            return 422, {"error": "timeout must be between 0 and 600, got 900", "field": "timeout"}
        fails = round(payload["count"] * payload["fail_rate"])
        ids = [f"id-{next(self.ids)}" for _ in range(payload["count"])]
        for i, task_id in enumerate(ids):
            self.tasks[task_id] = i < fails
        return 202, {"task_ids": ids, "count": len(ids)}

    def task(self, task_id):
        if not self.finish:
            return {"state": "PENDING"}
        if self.tasks[task_id]:
            return {"state": "FAILURE", "error": {"type": "SimulatedTaskError", "message": "x"}}
        return {"state": "SUCCESS"}


def no_prometheus(url):
    raise Unreachable(f"Prometheus at {url} did not answer (ConnectionError)")


def test_a_clean_run():
    app = FakeApp()
    s = cli.run(resolve("failures", count=20, rate=200), app, alerts=lambda url: ["Watchdog"])
    failed = round(20 * FAILURE_SHARE)
    assert (s["submitted"], s["succeeded"], s["failed"], s["exit_code"]) == (20, 20 - failed, failed, 0)
    assert s["failures_by_exception"] == {"SimulatedTaskError": failed}
    assert s["alerts_firing"] == ["Watchdog"] and s["alerts_error"] is None


def test_rejected_requests_stop_submitting_and_exit_1():
    app = FakeApp(reject_after=2)
    s = cli.run(resolve("steady", count=50, rate=100), app, concurrency=1, alerts=no_prometheus)
    assert s["submitted"] == 10 and s["rejected_tasks"] == 5 and s["exit_code"] == 1  # requests of 5
    assert s["api_errors"] == {"HTTP 422: timeout must be between 0 and 600, got 900": 1}
    assert app.requests == 3  # stopped at the first rejection
    assert s["alerts_firing"] is None and "did not answer" in s["alerts_error"]


def test_tasks_not_finished_in_time_are_lost():
    s = cli.run(resolve("steady", count=3, rate=100, wait_timeout=0), FakeApp(finish=False), alerts=no_prometheus)
    assert s["lost"] == 3 and s["exit_code"] == 1
    s = cli.run(resolve("steady", count=3, rate=100), FakeApp(finish=False), wait=False, alerts=no_prometheus)
    assert s["lost"] == 0 and s["unfinished"] == 3 and s["exit_code"] == 0
    assert "PENDING" not in FINISHED
