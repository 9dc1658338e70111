"""Turns a JSON object or a submitted form into a Submission, or a ValidationError naming the field.

One code path for both: the form's values are strings, so they are converted from text; JSON values
must already have the right type (true is not a number, "5" is not a number).
"""

import math
import re
from dataclasses import dataclass

from worker import settings

TASKS = ("process_task", "process_data")  # the tasks the app submits (worker/tasks.py)
WORKER_ID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MAX_TASK_NUM = 10**9


class ValidationError(Exception):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Submission:
    task: str = "process_task"
    count: int = 1
    task_num_start: int = 1
    timeout: float = 5
    fail_rate: float = 0.0
    memory_mb: int = 0
    worker_id: str = "celery"


FIELDS = tuple(Submission.__dataclass_fields__)
# Fields that inject faults rather than describe the guide's work; refused while fault injection is
# off (PROFILE=production), unless they ask for no fault at all (0, as the form always sends them).
FAULT_FIELDS = ("fail_rate", "memory_mb")


def _integer(field, value, from_text, low, high):
    if from_text:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?\d{1,12}", text):
            raise ValidationError(field, f"{field} must be a whole number, got {value!r}")
        value = int(text)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"{field} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValidationError(field, f"{field} must be between {low} and {high}, got {value}")
    return value


def _number(field, value, from_text, low, high):
    if from_text:
        try:
            value = float(str(value).strip())
        except ValueError:
            raise ValidationError(field, f"{field} must be a number, got {value!r}") from None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"{field} must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValidationError(field, f"{field} must be between {low} and {high}, got {value}")
    return value


def _choice(field, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(field, f"{field} must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_submission(data, from_text=False):
    """Validate a mapping of fields (JSON object or form). Missing fields take Submission's defaults."""
    if not isinstance(data, dict):
        raise ValidationError("body", "the body must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationError(
            str(unknown[0])[:64], f"unknown field {str(unknown[0])[:64]!r}; known fields: {', '.join(FIELDS)}"
        )
    given = {k: v for k, v in data.items() if not (from_text and str(v).strip() == "")}
    values = {}
    if "task" in given:
        values["task"] = _choice("task", given["task"], TASKS)
    if "count" in given:
        values["count"] = _integer("count", given["count"], from_text, 1, settings.MAX_TASKS_PER_REQUEST)
    if "task_num_start" in given:
        values["task_num_start"] = _integer("task_num_start", given["task_num_start"], from_text, 0, MAX_TASK_NUM)
    if "timeout" in given:
        values["timeout"] = _number("timeout", given["timeout"], from_text, 0, settings.MAX_TIMEOUT_SECONDS)
    if "fail_rate" in given:
        values["fail_rate"] = _number("fail_rate", given["fail_rate"], from_text, 0.0, 1.0)
    if "memory_mb" in given:
        values["memory_mb"] = _integer("memory_mb", given["memory_mb"], from_text, 0, settings.MAX_MEMORY_MB_PER_TASK)
    if "worker_id" in given:
        worker_id = given["worker_id"]
        if not isinstance(worker_id, str) or not WORKER_ID_RE.fullmatch(worker_id):
            raise ValidationError("worker_id", "worker_id must be 1-64 letters, digits or _ . @ -")
        values["worker_id"] = worker_id
    sub = Submission(**values)
    _check_fault_modes(sub)
    _check_proportion(sub)
    return sub


def _check_fault_modes(sub):
    if settings.FAULT_INJECTION:
        return
    for field in FAULT_FIELDS:
        if getattr(sub, field):
            raise ValidationError(
                field,
                f"{field} is a fault-injection field and fault injection is off "
                f"(PROFILE={settings.PROFILE}); leave it out or set it to 0, or set "
                "FAULT_INJECTION=on where the workers may be broken on purpose",
            )


def _check_proportion(sub):
    """Totals of one request: each field may be within its range and the product still too much."""
    seconds = sub.count * sub.timeout
    if seconds > settings.MAX_TASK_SECONDS_PER_REQUEST:
        raise ValidationError(
            "count",
            f"count x timeout must be at most {settings.MAX_TASK_SECONDS_PER_REQUEST:g} "
            f"task-seconds per request, got {sub.count} x {sub.timeout:g} = {seconds:g}; "
            "send fewer or shorter tasks, or several requests",
        )
    memory = sub.count * sub.memory_mb
    if memory > settings.MAX_MEMORY_MB_PER_REQUEST:
        raise ValidationError(
            "memory_mb",
            f"count x memory_mb must be at most {settings.MAX_MEMORY_MB_PER_REQUEST} MB "
            f"per request, got {sub.count} x {sub.memory_mb} = {memory} MB",
        )


def failing_indexes(count, fail_rate):
    """Which of `count` tasks fail: exactly floor(count * fail_rate), spread evenly."""
    return {i for i in range(count) if math.floor((i + 1) * fail_rate + 1e-9) > math.floor(i * fail_rate + 1e-9)}
