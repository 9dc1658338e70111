"""Scenario definitions and the plan of requests, checked against the app's own validation."""

import pytest
from hypothesis import given, strategies as st


from app.validation import failing_indexes as app_failing_indexes, parse_submission
from loadtest import scenarios
from loadtest.scenarios import batches, resolve
from mixin.config import Config

CFG = Config()


def total_fails(plan):
    return sum(b.fail_count for b in batches(plan))


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_every_scenario_makes_requests_the_api_accepts(name):
    plan = resolve(name)
    planned = batches(plan)
    assert sum(b.count for b in planned) == plan.count
    for b in planned:
        sub = parse_submission(b.payload())  # raises if the app would answer 422
        # The app fails exactly the tasks we meant to fail in this request.
        assert len(app_failing_indexes(sub.count, sub.fail_rate)) == b.fail_count


def test_scenario_shapes():
    s = scenarios.SCENARIOS
    assert {x for x, _ in s["mixed"].tasks} == {"process_task", "process_data"}
    assert s["cpu"].tasks[0][0] == "process_data"
    # failures: the success ratio ends well below the alert's threshold
    assert 1 - s["failures"].fail_rate < CFG.thresholds.success_ratio_min and s["mixed"].fail_rate > 0
    assert s["memory"].memory_mb > 0
    assert s["slow"].tasks[0][1] > s["steady"].tasks[0][1]
    # backlog: more task-seconds per second than 3 workers x 2 processes can run
    assert s["backlog"].rate * s["backlog"].tasks[0][1] > 6
    # failures: enough finished tasks (>= 20 in 5m) and long enough (for: 2m) for CelerySuccessRateLow
    assert s["failures"].rate * s["failures"].duration >= 20 and s["failures"].duration > 150


def test_burst_is_one_request_of_20():
    [b] = batches(resolve("burst"))
    assert b.payload() == {"task": "process_task", "count": 20, "task_num_start": 1, "timeout": 10.0, "fail_rate": 0.0}
    assert b.due == 0


def test_mixed_alternates_task_names_and_timeouts():
    planned = batches(resolve("mixed"))
    assert [b.task for b in planned[:4]] == ["process_task", "process_data"] * 2
    assert {b.task: b.timeout for b in planned} == {"process_task": 0.5, "process_data": 0.2}


def test_memory_mb_is_sent_only_when_used():
    assert "memory_mb" not in batches(resolve("steady"))[0].payload()
    assert batches(resolve("memory"))[0].payload()["memory_mb"] == 1


def test_high_rates_are_grouped_and_due_times_follow_the_rate():
    planned = batches(resolve("steady", rate=50, duration=6))
    assert {b.count for b in planned} == {3}  # 50/s in requests of 3: under 20 requests/s
    assert len(planned) == 100
    # A batch is due when the rate has earned all its tasks: tasks so far / due == rate.
    sent = 0
    for b in planned:
        sent += b.count
        assert sent / b.due == pytest.approx(50)
    assert batches(resolve("steady", rate=10, duration=1))[0].count == 1


def test_failure_count_is_exact_and_numbers_are_consecutive():
    plan = resolve("failures", count=20, rate=20, fail_rate=0.2)
    assert total_fails(plan) == 4
    planned = batches(plan)
    assert [b.task_num_start for b in planned] == list(range(1, 21))


@given(count=st.integers(1, 3000), rate=st.floats(0.1, 500), fail_rate=st.floats(0, 1))
def test_batches_cover_every_task_once_with_exact_failures(count, rate, fail_rate):
    plan = resolve("steady", count=count, rate=rate, fail_rate=fail_rate)
    planned = batches(plan)
    starts = [b.task_num_start for b in planned]
    assert starts[0] == 1 and sum(b.count for b in planned) == count
    assert all(a.task_num_start + a.count == b.task_num_start for a, b in zip(planned, planned[1:], strict=False))
    assert all(1 <= b.count <= scenarios.MAX_TASKS_PER_REQUEST for b in planned)
    assert total_fails(plan) == len(app_failing_indexes(count, fail_rate))
    assert all(len(app_failing_indexes(b.count, b.payload()["fail_rate"])) == b.fail_count for b in planned)
    assert planned[-1].due == pytest.approx(count / rate)
