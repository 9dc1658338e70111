"""Real RabbitMQ + Redis + real workers: results, failures in Flower, revoke through Flower's API."""

import pytest
import requests

from tests.live import APP, FLOWER, flower_task, submit, task_state, wait_finished, wait_for

pytestmark = pytest.mark.stack


def test_task_completes_with_the_guides_result_shape(stack):
    [task_id] = submit(task="process_task", count=1, timeout=0.2, task_num_start=1)
    body = wait_finished([task_id], 60)[task_id]
    assert body["state"] == "SUCCESS"
    assert body["result"] == {"status": "success", "task_num": 1, "task_id": task_id}
    info = wait_for(
        lambda: flower_task(task_id),
        30,
        message="Flower to know the task",
    )
    # The guide: args {"task_num": 1, "timeout": 5, "worker_id": "celery"}
    assert "'task_num': 1" in info["kwargs"] and "'worker_id': 'celery'" in info["kwargs"]
    assert info["name"] == "process_task"


def test_cpu_bound_task_runs(stack):
    [task_id] = submit(task="process_data", count=1, timeout=0.3, task_num_start=5)
    body = wait_finished([task_id], 60)[task_id]
    assert body["state"] == "SUCCESS" and body["result"]["task_num"] == 5 and body["result"]["rounds"] > 0


def test_failing_task_shows_exception_and_traceback_in_flower(stack):
    [task_id] = submit(task="process_task", count=1, timeout=0.1, fail_rate=1.0, task_num_start=9)
    body = wait_finished([task_id], 60)[task_id]
    assert body["state"] == "FAILURE"
    assert body["error"]["type"] == "SimulatedTaskError"

    def flower_failed():
        info = flower_task(task_id)
        return info if info.get("state") == "FAILURE" else None

    info = wait_for(flower_failed, 30, message="Flower to show the failure")
    assert "SimulatedTaskError" in info["exception"]
    assert "Traceback" in info["traceback"] and "worker/tasks.py" in info["traceback"]
    assert info["worker"].startswith("celery_worker-")
    # Scenario 3: filter by state in Flower's API.
    failed = requests.get(f"{FLOWER}/api/tasks", params={"state": "FAILURE"}, timeout=10).json()
    assert task_id in failed


def test_revoke_through_flowers_api_stops_a_running_task(stack):
    [task_id] = submit(task="process_task", count=1, timeout=60, task_num_start=99)
    wait_for(lambda: task_state(task_id)["state"] == "STARTED", 30, message="the task to start")
    r = requests.post(f"{FLOWER}/api/task/revoke/{task_id}", params={"terminate": "true"}, timeout=10)
    assert r.status_code == 200, r.text
    body = wait_for(lambda: (b := task_state(task_id))["state"] == "REVOKED" and b, 30, message="REVOKED")
    assert body["state"] == "REVOKED"
    info = wait_for(
        lambda: (i := flower_task(task_id)).get("state") == "REVOKED" and i,
        30,
        message="Flower to show REVOKED",
    )
    assert info["state"] == "REVOKED"


def test_task_lookup_errors_are_json(stack):
    r = requests.get(f"{APP}/api/tasks/not-a-uuid", timeout=10)
    assert r.status_code == 400 and r.json()["field"] == "task_id"
