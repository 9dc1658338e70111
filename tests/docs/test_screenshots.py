"""The docs' pictures cannot go stale silently.

`make screenshots` (tools/screenshots.py) takes every picture from a running stack and records each
in docs/screenshots/screenshots.json: the day, the page (at its default address), the picture's
SHA-256 and the names on it that come from the code. Checked here: every picture has its record and
matches it (a picture replaced by hand fails); the names it shows still exist (workers named as
native mode names them, task names the app accepts, alert names, the whole set of alert rules
Prometheus had loaded, the runbook links the rules carry), so renaming any of them fails until the
pictures are taken again; every picture is shown in the docs with a caption giving the day it was
taken.
"""

import hashlib
import json
import re
from urllib.parse import urlsplit

import pytest

from app.validation import TASKS
from native import services
from native.ports import BASE_PORTS
from tests.docs.markdown import COMMAND_DOCS, ROOT, load_rules, read, rel

SHOTS = ROOT / "docs" / "screenshots"
MANIFEST = SHOTS / "screenshots.json"
RECORDS = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
PICTURES = sorted(p.name for p in SHOTS.glob("*.png"))
IMAGE_RE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")


def test_every_picture_has_its_record_and_matches_it():
    assert PICTURES, "docs/screenshots/ has no pictures"
    assert sorted(RECORDS) == PICTURES, (
        "docs/screenshots/screenshots.json and the pictures differ: run `make screenshots`"
    )
    for name in PICTURES:
        digest = hashlib.sha256((SHOTS / name).read_bytes()).hexdigest()
        assert RECORDS[name]["sha256"] == digest, f"{name} is not the picture `make screenshots` took"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", RECORDS[name]["taken"]), name


def native_worker_name(name):
    """Whether `name` is a worker name as native mode gives it (services.worker_nodename)."""
    for index in range(1, 17):
        prefix, _, suffix = services.worker_nodename(index).partition("%h")
        if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix):
            return True
    return False


def rules_file_alerts():
    """Every alerting rule of alerts/celery.rules.yml, one entry per rule (names repeat)."""
    import yaml

    groups = yaml.safe_load(read(ROOT / "alerts" / "celery.rules.yml"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("name", PICTURES)
def test_the_names_a_picture_shows_still_exist(name):
    record = RECORDS.get(name)
    assert record, f"{name}: no record; run `make screenshots`"
    shows, stale = record["shows"], []
    stale += [w for w in shows.get("workers", []) if not native_worker_name(w)]
    stale += [t for t in shows.get("tasks", []) if t not in TASKS]
    alerts = load_rules()
    stale += [a for a in shows.get("alerts", []) if a not in alerts]
    runbooks = {rule["annotations"].get("runbook_url") for rule in alerts.values()}
    stale += [u for u in shows.get("runbook_urls", []) if u not in runbooks]
    if "alert_rules" in shows:
        now = sorted(rule["alert"] for rule in rules_file_alerts())
        if shows["alert_rules"] != now:
            stale.append(f"the alert rules ({len(shows['alert_rules'])} then, {len(now)} now)")
    assert not stale, f"{name} shows what no longer exists: {stale}; run `make screenshots`"
    page = urlsplit(record["page"])
    if page.scheme:
        assert page.hostname == "localhost" and page.port in BASE_PORTS.values(), (
            f"{name}: taken at {record['page']}, not at the default stack's address"
        )


@pytest.mark.parametrize("name", PICTURES)
def test_every_picture_is_shown_with_the_day_it_was_taken(name):
    shown = []
    for doc in COMMAND_DOCS:
        lines = read(doc).splitlines()
        for i, line in enumerate(lines):
            for target in IMAGE_RE.findall(line):
                if target.rsplit("/", 1)[-1] != name:
                    continue
                caption = " ".join(lines[i + 1 : i + 5])
                day = RECORDS[name]["taken"]
                assert day in caption, f"{rel(doc)}: the caption of {name} does not say it was taken {day}"
                shown.append(doc)
    assert shown, f"{name} is shown nowhere in the docs"
