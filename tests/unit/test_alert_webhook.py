"""The app's Alertmanager webhook (POST /api/alerts), the /alerts page and the runbook pages, through
Flask's test client: only bearer-authenticated, bounded, well-formed posts are stored."""

import json
import re
from pathlib import Path

import pytest

from app import notifications, settings
from app.main import create_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def payload(status="firing", name="CeleryTaskSuccessRateLow", **labels):
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "warning",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "severity": "warning"},
        "commonAnnotations": {},
        "externalURL": "http://localhost:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "severity": "warning", **labels},
                "annotations": {
                    "summary": f"{name} summary",
                    "description": "62% of runs succeeded",
                    "runbook_url": f"http://localhost:8080/runbooks/{name}",
                    "dashboard_url": "http://localhost:3000/d/celery-tasks",
                    "flower_url": "javascript:alert(1)",
                },
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://localhost:9090/graph",
                "fingerprint": "abc",
            }
        ],
    }


@pytest.fixture()
def client():
    app = create_app()
    app.config.update(ALERT_WEBHOOK_TOKEN=TOKEN, ALERT_WEBHOOK_MAX_BYTES=4096)
    return app.test_client()


def stored(client):
    return client.get("/api/alerts").get_json()["notifications"]


def test_a_valid_post_is_stored(client):
    r = client.post("/api/alerts", json=payload(name="A"), headers=AUTH)
    assert r.status_code == 200, r.get_json()
    assert [n["alerts"][0]["labels"]["alertname"] for n in stored(client)] == ["A"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"])
def test_without_the_token_401_json_and_nothing_stored(client, header):
    headers = {"Authorization": header} if header else {}
    r = client.post("/api/alerts", json=payload(), headers=headers)
    assert r.status_code == 401
    assert r.get_json()["field"] == "Authorization"
    assert stored(client) == []


def test_no_token_configured_refuses_everyone():
    app = create_app()
    app.config.update(ALERT_WEBHOOK_TOKEN="")
    for headers in ({}, {"Authorization": "Bearer "}):
        assert app.test_client().post("/api/alerts", json=payload(), headers=headers).status_code == 401


def test_body_too_large_413(client):
    big = payload()
    big["alerts"][0]["annotations"]["description"] = "x" * 5000
    r = client.post("/api/alerts", json=big, headers=AUTH)
    assert r.status_code == 413 and r.get_json()["field"] == "body"
    # Without Content-Length (chunked), the limit still holds.
    body = json.dumps(big).encode()
    r = client.post(
        "/api/alerts",
        input_stream=__import__("io").BytesIO(body),
        headers={**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert r.status_code in (400, 413)
    assert stored(client) == []


def broken(mutate):
    p = payload()
    mutate(p)
    return p


MALFORMED = {
    "not json": (b"{nope", "body"),
    "a list": ([], "body"),
    "no version": (broken(lambda p: p.pop("version")), "version"),
    "bad status": (broken(lambda p: p.update(status="on fire")), "status"),
    "no alerts": (broken(lambda p: p.update(alerts=[])), "alerts"),
    "alert not object": (broken(lambda p: p.update(alerts=["x"])), "alerts[0]"),
    "labels not strings": (broken(lambda p: p["alerts"][0]["labels"].update(severity=3)), "alerts[0].labels"),
    "no alertname": (broken(lambda p: p["alerts"][0]["labels"].pop("alertname")), "alerts[0].labels"),
    "annotations list": (broken(lambda p: p["alerts"][0].update(annotations=[])), "alerts[0].annotations"),
    "alert status": (broken(lambda p: p["alerts"][0].update(status=None)), "alerts[0].status"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_400_with_field_and_not_stored(client, case):
    body, field = MALFORMED[case]
    kwargs = {"data": body, "content_type": "application/json"} if isinstance(body, bytes) else {"json": body}
    r = client.post("/api/alerts", headers=AUTH, **kwargs)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["field"] == field
    assert stored(client) == []


def test_alerts_page_newest_first_with_links(client):
    client.post("/api/alerts", json=payload(name="First"), headers=AUTH)
    client.post(
        "/api/alerts",
        json=payload("resolved", name="Second", name_="x", queue_name="celery", cluster="eu1"),
        headers=AUTH,
    )
    html = client.get("/alerts").get_data(as_text=True)
    assert html.index('data-alertname="Second"') < html.index('data-alertname="First"')
    assert 'href="http://localhost:8080/runbooks/First"' in html
    assert 'href="http://localhost:3000/d/celery-tasks"' in html
    assert "javascript:" not in html  # only http(s) links become links
    assert "queue_name=celery" in html and "cluster=eu1" in html
    silences = re.findall(r'href="(http://localhost:9093/#/silences/new\?filter=[^"]+)"', html)
    assert "alertname%3D%22First%22" in silences[-1] and "alertname%3D%22Second%22" in silences[0]


def test_silence_url_encodes_the_matchers():
    url = notifications.silence_url("http://am:9093/", {"alertname": "X", "queue": "a b"})
    assert url == "http://am:9093/#/silences/new?filter=%7Balertname%3D%22X%22%2Cqueue%3D%22a%20b%22%7D"
    assert notifications.silence_url("", {"alertname": "X"}) is None


RUNBOOKS = sorted(p.stem for p in (REPO / "docs" / "runbooks").glob("*.md"))


@pytest.mark.parametrize("name", RUNBOOKS)
def test_every_runbook_is_a_page(client, name):
    r = client.get(f"/runbooks/{name}")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert f"<h1>{name}</h1>" in html and "<h2>" in html


def test_runbook_index_lists_them_all(client):
    html = client.get("/runbooks").get_data(as_text=True)
    assert all(f'href="/runbooks/{n}"' in html for n in RUNBOOKS)


@pytest.mark.parametrize("name", ["NoSuchAlert", "CeleryWorkerDown.md", "..%2Fsettings", "../../etc/passwd", "a b"])
def test_unknown_runbook_404_json(client, name):
    r = client.get(f"/runbooks/{name}")
    assert r.status_code == 404
    assert r.get_json()["field"] == "name"


def test_markdown_html_is_escaped(tmp_path, monkeypatch, client):
    (tmp_path / "Evil.md").write_text("# Evil\n\n<script>alert(1)</script>\n")
    monkeypatch.setattr(settings, "RUNBOOKS_DIR", str(tmp_path))
    html = client.get("/runbooks/Evil").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
