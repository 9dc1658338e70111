"""Property-based: whatever arrives at POST /api/tasks or the form, the app never answers 500 and
enqueues exactly `count` tasks on 202 and nothing on a 4xx.

The workers stop consuming for the duration, so the queue depth shows every enqueued message; the
tasks this test enqueued are purged at the end (they were only ever test input, and are never run).
"""

import json
import re

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from app.validation import FIELDS
from tests.live import APP
from worker.celery_app import app as celery_app

pytestmark = pytest.mark.stack

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
# Mostly plausible bodies (known fields, any values) plus anything at all.
field_values = st.one_of(
    json_values,
    st.integers(-5, 2000),
    st.floats(-1, 2),
    st.sampled_from(["process_task", "process_data", "", "0", "1e9"]),
)
bodies = st.one_of(st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=len(FIELDS)), json_values)


def queue_depth():
    with celery_app.connection_for_write() as conn:
        return conn.default_channel.queue_declare("celery", passive=True).message_count


@pytest.fixture(scope="module")
def paused_queue(stack):
    celery_app.control.cancel_consumer("celery", reply=True, timeout=5, limit=3)
    try:
        yield
    finally:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge("celery")
        celery_app.control.add_consumer("celery", reply=True, timeout=5, limit=3)


def check(response, before):
    assert response.status_code != 500, response.text
    assert response.status_code in (201, 202, 400, 413, 415, 422), response.status_code
    after = queue_depth()
    if response.status_code in (201, 202):
        count = (
            len(response.json()["task_ids"])
            if response.status_code == 202
            else len(re.findall(r'class="task-link"', response.text))
        )
        assert after - before == count
    else:
        assert after == before, f"{response.status_code} but {after - before} enqueued"


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(body=bodies)
def test_json_api_never_500_and_enqueues_only_on_success(paused_queue, body):
    before = queue_depth()
    check(requests.post(f"{APP}/api/tasks", json=body, timeout=30), before)


@SETTINGS
@given(
    raw=st.binary(max_size=2000),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=latin-1", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
)
def test_raw_bodies_of_any_encoding(paused_queue, raw, content_type):
    before = queue_depth()
    check(requests.post(f"{APP}/api/tasks", data=raw, headers={"Content-Type": content_type}, timeout=30), before)


@SETTINGS
@given(form=st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=20), max_size=len(FIELDS)))
def test_form_never_500_and_enqueues_only_on_success(paused_queue, form):
    browser = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(f"{APP}/", timeout=10).text).group(1)
    before = queue_depth()
    check(browser.post(f"{APP}/", data={**form, "csrf_token": token}, timeout=30), before)


def test_documented_limits_are_enforced(paused_queue):
    from app import settings as app_settings
    from worker import settings as worker_settings

    before = queue_depth()
    too_big = json.dumps({"worker_id": "x" * app_settings.MAX_BODY_BYTES})
    assert (
        requests.post(
            f"{APP}/api/tasks", data=too_big, headers={"Content-Type": "application/json"}, timeout=10
        ).status_code
        == 413
    )
    for field, value in (
        ("count", worker_settings.MAX_TASKS_PER_REQUEST + 1),
        ("timeout", worker_settings.MAX_TIMEOUT_SECONDS + 0.5),
    ):
        r = requests.post(f"{APP}/api/tasks", json={field: value}, timeout=10)
        assert r.status_code == 422 and r.json()["field"] == field
    assert queue_depth() == before
