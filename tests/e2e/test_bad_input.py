"""Bad input to the API and the form: 4xx JSON naming the field, and nothing enqueued.

The workers stop consuming the `celery` queue for the duration, so anything enqueued would stay in
the queue; a good request at the end proves the check can see a message arrive.
"""

import re

import pytest
import requests

from app.validation import FIELDS
from tests.live import APP
from worker import settings
from worker.celery_app import app as celery_app

pytestmark = pytest.mark.stack

JSON_CASES = [
    ({"count": "ten"}, 422, "count"),
    ({"count": -1}, 422, "count"),
    ({"count": 2.5}, 422, "count"),
    ({"count": settings.MAX_TASKS_PER_REQUEST + 1}, 422, "count"),
    ({"task": "unknown_task"}, 422, "task"),
    ({"fail_rate": 1.5}, 422, "fail_rate"),
    ({"fail_rate": -0.5}, 422, "fail_rate"),
    ({"timeout": -2}, 422, "timeout"),
    ({"task_num_start": "x"}, 422, "task_num_start"),
    ({"surprise": 1}, 422, "surprise"),
    # Each field within its range, the request's total out of proportion.
    ({"count": 1000}, 422, "count"),  # 1000 x the default 5 s
    ({"task": "process_task", "count": 8, "timeout": 0.1, "memory_mb": 256}, 422, "memory_mb"),
    ([1, 2, 3], 422, "body"),
]


def queue_depth():
    with celery_app.connection_for_write() as conn:
        return conn.default_channel.queue_declare("celery", passive=True).message_count


@pytest.fixture
def paused_queue(stack):
    celery_app.control.cancel_consumer("celery", reply=True, timeout=5, limit=3)
    try:
        yield
    finally:
        celery_app.control.add_consumer("celery", reply=True, timeout=5, limit=3)


def test_bad_input_gets_json_errors_and_enqueues_nothing(paused_queue):
    depth = queue_depth()
    submitted_before = submitted_total()
    for body, status, field in JSON_CASES:
        r = requests.post(f"{APP}/api/tasks", json=body, timeout=10)
        assert (r.status_code, r.json().get("field")) == (status, field), (body, r.text)
        assert r.json()["error"]
    raw_cases = [
        (b"{not json", {"Content-Type": "application/json"}, 400, "body"),
        (b"count=3", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
        (b'{"count": 1}', {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (b'{"pad": "' + b"x" * (settings_max_body() + 10) + b'"}', {"Content-Type": "application/json"}, 413, "body"),
    ]
    for data, headers, status, field in raw_cases:
        r = requests.post(f"{APP}/api/tasks", data=data, headers=headers, timeout=10)
        assert r.status_code == status and r.json()["field"] == field, (data[:40], r.status_code, r.text)
    # The form answers 422 with the message on the page (with its CSRF token, as a browser sends it).
    browser = requests.Session()
    # A new connection per request: reusing an idle one races the server closing it (ECONNRESET).
    browser.headers["Connection"] = "close"
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(f"{APP}/", timeout=10).text).group(1)
    r = browser.post(f"{APP}/", data={"task": "process_task", "count": "-4", "csrf_token": token}, timeout=10)
    assert r.status_code == 422 and "count must be between" in r.text
    # A cross-site submission (no token) is refused.
    r = requests.post(f"{APP}/", data={"task": "process_task", "count": "1"}, timeout=10)
    assert r.status_code == 400 and "another site" in r.text
    assert queue_depth() == depth
    assert submitted_total() == submitted_before
    # Positive control: a good request is visible in the paused queue.
    requests.post(f"{APP}/api/tasks", json={"count": 2, "timeout": 0}, timeout=10).raise_for_status()
    assert queue_depth() == depth + 2


def settings_max_body():
    from app import settings as app_settings

    return app_settings.MAX_BODY_BYTES


def submitted_total():
    text = requests.get(f"{APP}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("app_tasks_submitted_total{")
    )


def test_every_field_is_documented_in_the_form(stack):
    page = requests.get(f"{APP}/", timeout=10).text
    for field in FIELDS:
        if field != "worker_id":
            assert f'name="{field}"' in page
