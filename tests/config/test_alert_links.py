"""Every link an alert carries opens something: runbook_url is a page the app serves,
dashboard_url names a dashboard uid that the generated Grafana JSON defines, and a flower_url (task
alerts) is a Flower page. Checked on alerts/celery.rules.yml, the file Prometheus loads."""

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from flower.urls import handlers as flower_handlers

from app.main import create_app
from mixin.config import Config

CFG = Config()

REPO = Path(__file__).resolve().parents[2]
ALERTS = [
    r
    for g in yaml.safe_load((REPO / "alerts" / "celery.rules.yml").read_text())["groups"]
    for r in g["rules"]
    if "alert" in r
]
DASHBOARD_UIDS = {
    json.loads(p.read_text())["uid"] for p in (REPO / "grafana" / "provisioning" / "dashboards").glob("*.json")
}
FLOWER_PAGES = [re.compile(h[0] if isinstance(h, tuple) else h.regex.pattern) for h in flower_handlers]
FLOWER_PAGES = [p for p in FLOWER_PAGES if p.pattern not in (".*", "/static/(.*)")]


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


def ids(rule):
    return rule["alert"]


@pytest.mark.parametrize("rule", ALERTS, ids=ids)
def test_runbook_url_is_a_page_of_the_app(rule, client):
    url = rule["annotations"]["runbook_url"]
    assert url == CFG.urls.runbook.replace("{alert}", rule["alert"])
    path = urlsplit(url).path
    r = client.get(path)
    assert r.status_code == 200, f"{url} -> {r.status_code}"
    assert f"<h1>{rule['alert']}</h1>" in r.get_data(as_text=True)


@pytest.mark.parametrize("rule", ALERTS, ids=ids)
def test_dashboard_url_names_a_generated_dashboard(rule):
    url = rule["annotations"]["dashboard_url"]
    assert url.startswith(f"{CFG.urls.grafana}/d/")
    uid = urlsplit(url).path.split("/")[2]
    assert uid in DASHBOARD_UIDS, f"{url}: no dashboard with uid {uid} in grafana/provisioning/dashboards"


TASK_ALERTS = [
    r for r in ALERTS if "$labels.name" in r["annotations"].get("summary", "") + r["annotations"].get("description", "")
]


@pytest.mark.parametrize("rule", TASK_ALERTS, ids=ids)
def test_task_alerts_link_to_flower_filtered_by_the_task(rule):
    url = rule["annotations"].get("flower_url")
    if url is None:
        pytest.fail(f"{rule['alert']} has no flower_url annotation")
    parts = urlsplit(url)
    assert url.startswith(CFG.urls.flower)
    assert any(p.fullmatch(parts.path) for p in FLOWER_PAGES), f"{parts.path} is not a Flower page"
    assert (
        "{{ $labels.name }}" in " ".join(v for vs in parse_qs(parts.query).values() for v in vs)
        or "{{ $labels.name }}" in parts.path
    ), url


def test_every_alert_has_a_runbook_file():
    have = {p.stem for p in (REPO / "docs" / "runbooks").glob("*.md")}
    assert {r["alert"] for r in ALERTS} <= have


def test_the_image_keeps_the_runbooks():
    # .dockerignore: the last matching pattern wins; the app in the image serves docs/runbooks.
    import fnmatch

    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    path, excluded = "docs/runbooks/Watchdog.md", False
    for pattern in lines:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        if any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            excluded = not negate
    assert not excluded
