"""The guide's tasks, with the fault modes that let every alert condition happen on demand.

Fault modes (the app sets them per task):
- fail=True: the task raises SimulatedTaskError after its work (success-rate alerts);
- a long `timeout`: slow tasks (runtime-rising alert, backlog);
- process_data: CPU-bound work for `timeout` seconds (worker CPU alert);
- memory_mb: the pool process keeps that much more memory after the task (memory-growth alert), up
  to WORKER_MAX_RETAINED_MB in total per pool process; worker_max_memory_per_child then replaces the
  process after its task (worker/celery_app.py), so the memory goes back to the host.
"""

import hashlib
import logging
import time

from worker import settings
from worker.celery_app import app

log = logging.getLogger(__name__)
MB = 1024 * 1024

# Memory deliberately kept alive by memory_mb tasks, per pool process.
_retained = []


class SimulatedTaskError(Exception):
    """Raised by a task asked to fail: stands for an application error."""


def retained_bytes():
    return sum(len(block) for block in _retained)


def _retain_memory(memory_mb):
    """Keep memory_mb more MB alive in this process, within WORKER_MAX_RETAINED_MB in total."""
    wanted = max(0, int(memory_mb)) * MB
    room = max(0, settings.WORKER_MAX_RETAINED_MB * MB - retained_bytes())
    if wanted > room:
        log.warning(
            "memory_mb=%s: this pool process already keeps %d MB of the %d MB it may keep; keeping %d MB",
            memory_mb,
            retained_bytes() // MB,
            settings.WORKER_MAX_RETAINED_MB,
            room // MB,
        )
    size = min(wanted, room)
    if size:
        # Multiplying a one-byte array writes every page, so RSS really grows.
        _retained.append(bytearray(b"\x01") * size)
    return size


def _finish(task, task_num, fail, worker_id):
    if fail:
        raise SimulatedTaskError(f"task_num {task_num} failed on purpose (worker_id={worker_id})")
    return {"status": "success", "task_num": task_num, "task_id": task.request.id}


@app.task(bind=True, name="process_task")
def process_task(self, task_num, timeout=5, worker_id="celery", fail=False, memory_mb=0):
    """Runs about `timeout` seconds (I/O-like wait) and returns the guide's result shape."""
    _retain_memory(memory_mb)
    time.sleep(timeout)
    return _finish(self, task_num, fail, worker_id)


@app.task(bind=True, name="process_data")
def process_data(self, task_num, timeout=5, worker_id="celery", fail=False, memory_mb=0):
    """Burns one core for about `timeout` seconds (hashing), the CPU-bound task."""
    _retain_memory(memory_mb)
    deadline = time.monotonic() + timeout
    digest = str(task_num).encode()
    rounds = 0
    while time.monotonic() < deadline:
        for _ in range(1000):
            digest = hashlib.sha256(digest).digest()
        rounds += 1000
    result = _finish(self, task_num, fail, worker_id)
    result["rounds"] = rounds
    return result
