"""alerts/: rules rendered from the bundle's configuration, valid for promtool 2.42, every alert
unit-tested both ways by the hand-written promtool tests (a firing case with its labels and
annotations, and a silent one), each with severity, annotations and a runbook in the repo."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mixin import rules
from mixin.durations import seconds
from mixin.config import Config
from native.ports import PORTS

CFG = Config()

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "alerts" / "celery.rules.yml"
TESTS = sorted((REPO / "alerts" / "tests").glob("*.test.yml"))
RUNBOOKS = REPO / "docs" / "runbooks"
# Always firing by design: a silent case cannot exist.
ALWAYS_FIRING = {"Watchdog"}

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")


def load(path):
    return yaml.safe_load(path.read_text())


GROUPS = load(RULES)["groups"]
ALERTS = [r for g in GROUPS for r in g["rules"] if "alert" in r]
ALERT_NAMES = sorted({r["alert"] for r in ALERTS})


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=300, cwd=REPO)


def test_committed_rules_are_what_the_generator_writes():
    assert RULES.read_text() == rules.render(CFG), "alerts/celery.rules.yml drifted from mixin/: run `python -m mixin`"


@needs_promtool
def test_promtool_check_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path):
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_unit_test_files_are_set_up_for_promtool_2_42(path):
    doc = load(path)
    assert doc["rule_files"] == ["../celery.rules.yml"]
    # Recording rules must be evaluated before the alerts that read them, in a fixed order.
    assert doc["group_eval_order"] == [g["name"] for g in GROUPS]
    for group in doc["tests"]:
        # Without `interval:` promtool 2.42 fires nothing, so "silent" cases would pass vacuously.
        assert "interval" in group, f"{path.name}: test group {group.get('name')!r} has no interval"


def alert_cases():
    """alertname -> {"firing": n, "silent": n, "annotated": n} over every alert check."""
    cases = {}
    for path in TESTS:
        for group in load(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                counts = cases.setdefault(case["alertname"], {"firing": 0, "silent": 0, "annotated": 0})
                counts["firing" if case.get("exp_alerts") else "silent"] += 1
                counts["annotated"] += all("exp_annotations" in a for a in case.get("exp_alerts") or [{}])
    return cases


def test_unit_tests_name_only_alerts_that_exist():
    # A misspelt name would make a "silent" case pass for nothing.
    assert set(alert_cases()) <= set(ALERT_NAMES)


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_has_a_firing_and_a_silent_case(name):
    cases = alert_cases().get(name, {"firing": 0, "silent": 0, "annotated": 0})
    assert cases["firing"] >= 1, f"{name} has no unit test where it fires"
    assert cases["annotated"] >= 1, f"{name} has no unit test that checks its rendered annotations"
    if name not in ALWAYS_FIRING:
        assert cases["silent"] >= 1, f"{name} has no unit test where it stays silent"


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_carries_severity_annotations_and_links(rule):
    name = rule["alert"]
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, "keys newer than Prometheus 2.42?"
    assert rule["labels"]["severity"] in {"critical", "warning", "info", "none"}
    notes = rule["annotations"]
    assert notes["summary"].strip() and notes["description"].strip()
    if name not in ALWAYS_FIRING:
        assert "$value" in notes["description"], "the description should show the live value"
    assert notes["runbook_url"] == CFG.urls.runbook.replace("{alert}", name)
    assert notes["dashboard_url"] in {f"{CFG.urls.grafana}/d/{uid}" for uid in CFG.dashboards.uids.values()}
    if "for" in rule:
        assert re.fullmatch(r"\d+[smhdw]", rule["for"])


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_has_a_runbook(name):
    path = RUNBOOKS / f"{name}.md"
    assert path.is_file(), f"missing runbook {path.relative_to(REPO)}"
    text = path.read_text()
    for section in ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation"):
        assert section in text, f"{path.name} lacks {section}"
    if name not in ALWAYS_FIRING:
        assert f"localhost:{PORTS['flower']}" in text, f"{path.name} should point at the Flower pages or API"


def test_recording_rules_come_first_in_their_own_groups():
    *recording, alerting = GROUPS
    assert [g["name"] for g in recording] == [
        "celery.task.rules",
        "celery.runtime.rules",
        "celery.rules",
        "celery.slo.rules",
    ]
    for group in recording:
        assert group["rules"] and all("record" in r for r in group["rules"])
        assert all(r["record"].startswith("celery:") for r in group["rules"])
    assert alerting["rules"] and all("alert" in r for r in alerting["rules"])


def test_groups_evaluate_every_5_to_15_seconds_and_long_slo_windows_every_minute():
    for group in GROUPS:
        assert set(group) == {"name", "interval", "rules"}, "group keys newer than Prometheus 2.42?"
        limit = 60 if group["name"] == "celery.slo.rules" else 15
        assert 5 <= seconds(group["interval"]) <= limit, group["name"]


def test_every_recorded_series_is_used_or_meant_for_dashboards():
    # A typo in a recorded name used by an alert would make that alert silently never fire.
    recorded = {r["record"] for g in GROUPS for r in g["rules"] if "record" in r}
    used = set(re.findall(r"celery:[a-z0-9_]+:[a-z0-9_]+", " ".join(r["expr"] for r in ALERTS)))
    assert used <= recorded
