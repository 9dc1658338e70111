import pytest

from app.validation import Submission, ValidationError, failing_indexes, parse_submission
from worker import settings


def test_defaults_and_guide_example():
    sub = parse_submission({"task": "process_task", "count": 20, "timeout": 10, "fail_rate": 0.0})
    assert sub == Submission(task="process_task", count=20, timeout=10, fail_rate=0.0)
    assert parse_submission({}) == Submission()


@pytest.mark.parametrize(
    "data, field",
    [
        ({"count": "5"}, "count"),
        ({"count": 1.5}, "count"),
        ({"count": True}, "count"),
        ({"count": 0}, "count"),
        ({"count": -3}, "count"),
        ({"count": settings.MAX_TASKS_PER_REQUEST + 1}, "count"),
        ({"task": "rm_rf"}, "task"),
        ({"task": 3}, "task"),
        ({"fail_rate": 1.01}, "fail_rate"),
        ({"fail_rate": -0.1}, "fail_rate"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": settings.MAX_TIMEOUT_SECONDS + 1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"task_num_start": -1}, "task_num_start"),
        ({"memory_mb": settings.MAX_MEMORY_MB_PER_TASK + 1}, "memory_mb"),
        ({"worker_id": "a b"}, "worker_id"),
        ({"timout": 3}, "timout"),
    ],
)
def test_bad_json_values_name_the_field(data, field):
    with pytest.raises(ValidationError) as exc:
        parse_submission(data)
    assert exc.value.field == field
    assert field in exc.value.message


@pytest.mark.parametrize("body", [[], "x", 3, None])
def test_body_must_be_an_object(body):
    with pytest.raises(ValidationError) as exc:
        parse_submission(body)
    assert exc.value.field == "body"


def test_form_values_are_converted_from_text():
    sub = parse_submission(
        {
            "task": "process_data",
            "count": " 3 ",
            "timeout": "0.5",
            "fail_rate": "0.25",
            "task_num_start": "7",
            "memory_mb": "",
        },
        from_text=True,
    )
    assert sub == Submission(task="process_data", count=3, timeout=0.5, fail_rate=0.25, task_num_start=7)


@pytest.mark.parametrize(
    "form, field",
    [
        ({"count": "abc"}, "count"),
        ({"count": "2.5"}, "count"),
        ({"timeout": "soon"}, "timeout"),
        ({"fail_rate": "inf"}, "fail_rate"),
    ],
)
def test_bad_form_values_name_the_field(form, field):
    with pytest.raises(ValidationError) as exc:
        parse_submission(form, from_text=True)
    assert exc.value.field == field


@pytest.mark.parametrize(
    "count, rate, expected", [(20, 0.0, 0), (20, 1.0, 20), (20, 0.25, 5), (10, 0.05, 0), (100, 0.05, 5), (7, 0.5, 3)]
)
def test_failing_indexes_are_exact_and_spread(count, rate, expected):
    fails = failing_indexes(count, rate)
    assert len(fails) == expected
    assert all(0 <= i < count for i in fails)
    if expected >= 2:
        ordered = sorted(fails)
        gaps = {b - a for a, b in zip(ordered, ordered[1:], strict=False)}
        assert max(gaps) - min(gaps) <= 1  # evenly spread, not bunched at the start


@pytest.mark.parametrize(
    "data, field, limit",
    [
        ({"count": 1000}, "count", "3600"),  # 1000 x the default 5 s
        ({"count": 10, "timeout": 600}, "count", "3600"),
        ({"count": 8, "timeout": 0.1, "memory_mb": 256}, "memory_mb", "512 MB"),
        ({"count": 3, "memory_mb": 200, "timeout": 0}, "memory_mb", "512 MB"),
    ],
)
def test_requests_out_of_proportion_name_the_field_and_the_limit(data, field, limit):
    with pytest.raises(ValidationError) as exc:
        parse_submission(data)
    assert exc.value.field == field
    assert limit in exc.value.message


def test_proportion_limits_are_inclusive():
    parse_submission({"count": 12, "timeout": 300})  # 3600 task-seconds
    parse_submission({"count": 2, "memory_mb": 256, "timeout": 0})  # 512 MB


@pytest.fixture
def fault_injection_off(monkeypatch):
    monkeypatch.setattr(settings, "FAULT_INJECTION", False)
    monkeypatch.setattr(settings, "PROFILE", "production")


@pytest.mark.parametrize(
    "data, field",
    [
        ({"fail_rate": 0.2}, "fail_rate"),
        ({"memory_mb": 4}, "memory_mb"),
        ({"fail_rate": "1", "memory_mb": "0"}, "fail_rate"),
    ],
)
def test_production_refuses_fault_fields(fault_injection_off, data, field):
    with pytest.raises(ValidationError) as exc:
        parse_submission(data, from_text=all(isinstance(v, str) for v in data.values()))
    assert exc.value.field == field
    assert "fault injection is off" in exc.value.message and "PROFILE=production" in exc.value.message


def test_production_keeps_the_guide_tasks(fault_injection_off):
    # The guide's example carries fail_rate 0.0, and the form sends every field: asking for no fault is fine.
    assert parse_submission({"task": "process_task", "count": 20, "timeout": 10, "fail_rate": 0.0}).count == 20
    sub = parse_submission(
        {"task": "process_data", "count": "2", "timeout": "1", "fail_rate": "0", "memory_mb": "0"}, from_text=True
    )
    assert sub.task == "process_data" and not sub.fail_rate and not sub.memory_mb


@pytest.mark.parametrize(
    "env, on",
    [
        ({}, True),
        ({"PROFILE": "production"}, False),
        ({"PROFILE": "production", "FAULT_INJECTION": "on"}, True),
        ({"PROFILE": "dev", "FAULT_INJECTION": "off"}, False),
    ],
)
def test_fault_injection_follows_the_profile(env, on):
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("PROFILE", "FAULT_INJECTION")}
    out = subprocess.run(
        [sys.executable, "-c", "from worker import settings; print(settings.FAULT_INJECTION)"],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(on)
