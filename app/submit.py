"""Enqueue a validated Submission: one producer connection, one message per task."""

from celery.exceptions import CeleryError
from kombu.exceptions import OperationalError

from app.validation import TASKS, failing_indexes
from worker import tasks
from worker.celery_app import app as celery_app

TASK_OBJECTS = {name: getattr(tasks, name) for name in TASKS}


class BrokerUnavailable(Exception):
    def __init__(self, message, enqueued):
        super().__init__(message)
        self.enqueued = enqueued


def task_kwargs(sub, index, fails):
    """The guide's arguments; fault-mode arguments only when used, so plain tasks look as in the guide."""
    kwargs = {"task_num": sub.task_num_start + index, "timeout": sub.timeout, "worker_id": sub.worker_id}
    if index in fails:
        kwargs["fail"] = True
    if sub.memory_mb:
        kwargs["memory_mb"] = sub.memory_mb
    return kwargs


def enqueue(sub):
    """Send the tasks; returns their ids. Raises BrokerUnavailable with the ids already sent."""
    task = TASK_OBJECTS[sub.task]
    fails = failing_indexes(sub.count, sub.fail_rate)
    ids = []
    try:
        with celery_app.producer_or_acquire() as producer:
            for index in range(sub.count):
                result = task.apply_async(kwargs=task_kwargs(sub, index, fails), producer=producer)
                ids.append(result.id)
    except (OperationalError, CeleryError, OSError) as exc:
        raise BrokerUnavailable(f"the broker is unavailable: {exc.__class__.__name__}", ids) from exc
    return ids
