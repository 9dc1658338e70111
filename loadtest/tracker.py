"""Completion tracking of our own task ids through the app's GET /api/tasks/<id> (the result backend)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

FINISHED = ("SUCCESS", "FAILURE", "REVOKED")


@dataclass
class TaskRecord:
    task: str
    submitted_at: float  # wall clock (time.time()) when its request was sent
    state: str = "PENDING"
    finished_at: float | None = None  # wall clock
    error_type: str | None = None


def finish_time(body, observed_at):
    """The backend's date_done (when the worker stored the result), else when we saw it finished."""
    try:
        return datetime.fromisoformat(body["date_done"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return observed_at


class Tracker:
    def __init__(self, get_state, workers=8, clock=time.time):
        self._get_state = get_state  # task id -> state body or None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll")
        self._clock = clock
        self._lock = threading.Lock()
        self.records = {}

    def add(self, ids, task, submitted_at):
        with self._lock:
            for task_id in ids:
                self.records[task_id] = TaskRecord(task, submitted_at)

    def unfinished(self):
        with self._lock:
            return [i for i, r in self.records.items() if r.state not in FINISHED]

    def poll(self):
        """Ask once for every unfinished task, in parallel; finished tasks are never asked again."""
        ids = self.unfinished()
        for task_id, body in zip(ids, self._pool.map(self._get_state, ids), strict=True):
            if body is None:  # no answer this round (app or backend busy/down): ask again next round
                continue
            record = self.records[task_id]
            record.state = body.get("state", record.state)
            if record.state in FINISHED:
                record.finished_at = finish_time(body, self._clock())
                if record.state == "FAILURE":
                    record.error_type = (body.get("error") or {}).get("type") or "unknown"
                elif record.state == "REVOKED":
                    record.error_type = "REVOKED"

    def counts(self):
        with self._lock:
            states = [r.state for r in self.records.values()]
        return {
            "submitted": len(states),
            "queued": sum(s not in FINISHED and s != "STARTED" for s in states),
            "running": states.count("STARTED"),
            "succeeded": states.count("SUCCESS"),
            "failed": states.count("FAILURE") + states.count("REVOKED"),
        }

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)
