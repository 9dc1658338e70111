"""Summary math: percentiles, rates, failures by exception, exit codes, and the table."""

import statistics

import pytest
from hypothesis import given, strategies as st
from rich.console import Console

from loadtest import report
from loadtest.runner import SubmitStats
from loadtest.scenarios import resolve
from loadtest.tracker import TaskRecord, Tracker, finish_time


def test_percentile_known_values():
    values = list(range(1, 101))
    assert report.percentile(values, 50) == 50.5
    assert report.percentile(values, 99) == pytest.approx(99.01)
    assert report.percentile([3.0], 95) == 3.0
    assert report.percentile([], 50) is None


@given(st.lists(st.floats(0, 1e4), min_size=2, max_size=200))
def test_percentile_matches_statistics_inclusive(values):
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for q in (50, 95, 99):
        assert report.percentile(values, q) == pytest.approx(cuts[q - 1], abs=1e-6)
    assert report.percentile(values, 0) == min(values) and report.percentile(values, 100) == max(values)


def record(state, submitted, finished, error=None):
    return TaskRecord("process_task", submitted, state, finished, error)


def stats(submitted=4, seconds=2.0, errors=None, rejected=0):
    s = SubmitStats(submitted=submitted, requests=submitted, rejected_tasks=rejected, errors=errors or {})
    s.started, s.last_sent = 10.0, 10.0 + seconds
    return s


def summary(records, waited=True, interrupted=False, errors=None, alerts=("Watchdog",), alerts_error=None):
    return report.summarize(
        resolve("steady", count=4, rate=2),
        "http://app",
        stats(errors=errors),
        records,
        started_at=1000.0,
        waited=waited,
        interrupted=interrupted,
        alerts=list(alerts) if alerts is not None else None,
        alerts_error=alerts_error,
    )


RECORDS = [
    record("SUCCESS", 1000.0, 1001.0),
    record("SUCCESS", 1000.5, 1002.5),
    record("FAILURE", 1001.0, 1004.0, "SimulatedTaskError"),
    record("REVOKED", 1001.5, 1003.0, "REVOKED"),
]


def test_summary_numbers():
    s = summary(RECORDS)
    assert (s["succeeded"], s["failed"], s["unfinished"], s["lost"]) == (2, 2, 0, 0)
    assert s["achieved_rate"] == 2.0 and s["throughput"] == 1.0  # 4 finished over 4 s
    assert s["latency_seconds"] == {"p50": 1.75, "p95": 2.85, "p99": 2.97, "sum": 1.0 + 2.0 + 3.0 + 1.5}
    assert s["failures_by_exception"] == {"SimulatedTaskError": 1, "REVOKED": 1}
    assert s["exit_code"] == 0 and s["alerts_firing"] == ["Watchdog"]


def test_exit_codes():
    pending = RECORDS[:3] + [record("PENDING", 1001.5, None)]
    assert summary(pending)["lost"] == 1 and summary(pending)["exit_code"] == 1
    assert summary(pending, waited=False)["exit_code"] == 0  # --no-wait: unfinished is not lost
    assert summary(pending, interrupted=True)["exit_code"] == 130
    assert summary(RECORDS, errors={"HTTP 422: bad": 1})["exit_code"] == 1


def test_table_shows_failures_alerts_and_prometheus_trouble():
    console = Console(width=120, record=True)
    console.print(report.table(summary(RECORDS)))
    text = console.export_text()
    assert "SimulatedTaskError: 1" in text and "Watchdog" in text and "p95 2.85 s" in text
    console.print(report.table(summary(RECORDS, alerts=None, alerts_error="Prometheus at x did not answer")))
    assert "unknown: Prometheus at x did not answer" in console.export_text()


def test_finish_time_prefers_date_done():
    assert finish_time({"date_done": "2026-01-01T00:00:01+00:00"}, 5.0) == 1767225601.0
    assert finish_time({"state": "REVOKED"}, 5.0) == 5.0


def test_tracker_polls_only_unfinished_ids():
    asked = []
    states = {
        "a": {"state": "SUCCESS", "date_done": "2026-01-01T00:00:01+00:00"},
        "b": {"state": "STARTED"},
        "c": None,
        "d": {"state": "FAILURE", "error": {"type": "SimulatedTaskError"}},
    }

    def get(task_id):
        asked.append(task_id)
        return states[task_id]

    tracker = Tracker(get, clock=lambda: 7.0)
    tracker.add(["a", "b", "c", "d"], "process_task", 1.0)
    tracker.poll()
    assert tracker.counts() == {"submitted": 4, "queued": 1, "running": 1, "succeeded": 1, "failed": 1}
    assert tracker.records["d"].error_type == "SimulatedTaskError" and tracker.records["d"].finished_at == 7.0
    asked.clear()
    tracker.poll()
    assert sorted(asked) == ["b", "c"]
    tracker.close()
