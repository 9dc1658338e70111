"""The app with fault injection off (PROFILE=production): fault fields get 422 JSON naming them before
anything is sent, and the form shows no fault fields. No broker is needed: nothing reaches it."""

import pytest

from app import main
from worker import settings


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(settings, "FAULT_INJECTION", False)
    monkeypatch.setattr(settings, "PROFILE", "production")
    sent = []
    monkeypatch.setattr(main, "enqueue", lambda sub: sent.append(sub) or ["id"] * sub.count)
    flask_app = main.create_app()
    flask_app.config["WTF_CSRF_ENABLED"] = False
    client = flask_app.test_client()
    client.sent = sent
    return client


@pytest.mark.parametrize(
    "body, field",
    [
        ({"task": "process_task", "count": 2, "fail_rate": 0.5}, "fail_rate"),
        ({"task": "process_task", "count": 2, "memory_mb": 64}, "memory_mb"),
    ],
)
def test_api_refuses_fault_fields(client, body, field):
    r = client.post("/api/tasks", json=body)
    assert r.status_code == 422
    assert r.get_json()["field"] == field and "fault injection is off" in r.get_json()["error"]
    assert client.sent == []


def test_api_still_runs_the_guide_example(client):
    r = client.post("/api/tasks", json={"task": "process_task", "count": 20, "timeout": 10, "fail_rate": 0.0})
    assert r.status_code == 202 and r.get_json()["count"] == 20
    assert len(client.sent) == 1


def test_form_hides_fault_fields_and_shows_limits(client):
    page = client.get("/").get_data(as_text=True)
    assert 'id="fail_rate"' not in page and 'id="memory_mb"' not in page
    assert "Fault injection (failure rate, memory kept) is off" in page
    assert f"count × timeout at most {settings.MAX_TASK_SECONDS_PER_REQUEST:g} task-seconds" in page


def test_proportion_refusal_through_the_api(monkeypatch, client):
    monkeypatch.setattr(settings, "FAULT_INJECTION", True)
    r = client.post("/api/tasks", json={"task": "process_task", "count": 8, "timeout": 0.1, "memory_mb": 256})
    assert r.status_code == 422 and r.get_json()["field"] == "memory_mb"
    assert f"at most {settings.MAX_MEMORY_MB_PER_REQUEST} MB" in r.get_json()["error"]
    assert client.sent == []
