import pytest

from app.validation import Submission, ValidationError, failing_indexes, parse_submission
from worker import settings


def test_defaults_and_guide_example():
    sub = parse_submission({"task": "process_task", "count": 20, "timeout": 10, "fail_rate": 0.0})
    assert sub == Submission(task="process_task", count=20, timeout=10, fail_rate=0.0)
    assert parse_submission({}) == Submission()


@pytest.mark.parametrize("data, field", [
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
])
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
    sub = parse_submission({"task": "process_data", "count": " 3 ", "timeout": "0.5", "fail_rate": "0.25",
                            "task_num_start": "7", "memory_mb": ""}, from_text=True)
    assert sub == Submission(task="process_data", count=3, timeout=0.5, fail_rate=0.25, task_num_start=7)


@pytest.mark.parametrize("form, field", [({"count": "abc"}, "count"), ({"count": "2.5"}, "count"),
                                         ({"timeout": "soon"}, "timeout"), ({"fail_rate": "inf"}, "fail_rate")])
def test_bad_form_values_name_the_field(form, field):
    with pytest.raises(ValidationError) as exc:
        parse_submission(form, from_text=True)
    assert exc.value.field == field


@pytest.mark.parametrize("count, rate, expected", [(20, 0.0, 0), (20, 1.0, 20), (20, 0.25, 5), (10, 0.05, 0),
                                                   (100, 0.05, 5), (7, 0.5, 3)])
def test_failing_indexes_are_exact_and_spread(count, rate, expected):
    fails = failing_indexes(count, rate)
    assert len(fails) == expected
    assert all(0 <= i < count for i in fails)
    if expected >= 2:
        ordered = sorted(fails)
        gaps = {b - a for a, b in zip(ordered, ordered[1:])}
        assert max(gaps) - min(gaps) <= 1  # evenly spread, not bunched at the start
