"""alertmanager/alertmanager.yml: valid for amtool 0.25, each severity reaches its receiver, every
receiver delivers to the app's webhook, no secret in the file, and the inhibitions do what
alertmanager/tests/inhibit.yml says."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bench import routes
from mixin.durations import seconds
from native.ports import PORTS

REPO = Path(__file__).resolve().parents[2]
AM = REPO / "alertmanager" / "alertmanager.yml"
CASES = REPO / "alertmanager" / "tests"
RULES = REPO / "alerts" / "celery.rules.yml"
WEBHOOK = f"http://app:{PORTS['app']}/api/alerts"

CONFIG = yaml.safe_load(AM.read_text())
ROUTES = yaml.safe_load((CASES / "routes.yml").read_text())
INHIBITS = yaml.safe_load((CASES / "inhibit.yml").read_text())
RULE_ALERTS = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]

needs_amtool = pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool missing: run `make deps`")


def amtool(*args):
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60)


@needs_amtool
def test_amtool_check_config():
    result = amtool("check-config", str(AM))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_amtool
@pytest.mark.parametrize("case", ROUTES, ids=lambda c: "-".join(str(v) for v in c["labels"].values()))
def test_route(case):
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    result = amtool(
        "config", "routes", "test", f"--config.file={AM}", "--verify.receivers=" + ",".join(case["receivers"]), *labels
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_severity_of_the_rules_has_a_routing_case():
    severities = {r["labels"]["severity"] for r in RULE_ALERTS}
    assert severities <= {c["labels"].get("severity") for c in ROUTES}


def webhook_receivers():
    return {
        r["name"]
        for r in CONFIG["receivers"]
        if any(h["url"] == WEBHOOK and h.get("send_resolved") for h in r.get("webhook_configs", []))
    }


@pytest.mark.parametrize(
    "labels",
    [{"alertname": r["alert"], **r["labels"]} for r in RULE_ALERTS]
    + [{"alertname": "SomethingElse", "severity": "unknown"}],
    ids=lambda labels: labels["alertname"],
)
def test_every_alert_reaches_the_webhook_soon_and_separately_per_object(labels):
    # The demo and the live tests read what the app's webhook received, firing and resolved.
    route = routes.route(CONFIG["route"], labels)
    assert route["receiver"] in webhook_receivers()
    if labels["alertname"] != "Watchdog":
        assert seconds(route["group_wait"]) <= 5
        # Two workers, queues or tasks in the same state are two notifications, not one.
        assert {"alertname", "job", "queue", "name", "worker"} <= set(route["group_by"])


@pytest.mark.parametrize("receiver", CONFIG["receivers"], ids=lambda r: r["name"])
def test_every_receiver_delivers_to_the_webhook_with_resolved(receiver):
    # The demo and the live tests read what the app's webhook received.
    hooks = receiver.get("webhook_configs", [])
    assert any(h["url"] == WEBHOOK and h.get("send_resolved") for h in hooks)


def test_the_watchdog_heartbeat_has_its_own_receiver_and_repeats_rarely():
    [watchdog] = [r for r in RULE_ALERTS if r["alert"] == "Watchdog"]
    route = routes.route(CONFIG["route"], {"alertname": "Watchdog", **watchdog["labels"]})
    assert route["receiver"] == "watchdog"
    assert seconds(route["repeat_interval"]) >= 12 * 3600


def test_no_secret_is_committed():
    text = AM.read_text()
    assert not re.search(r"hooks\.slack\.com|^\s*(api_url|auth_password|smtp_auth_password|slack_api_url):", text, re.M)
    # Secrets are read from mounted files instead.
    assert CONFIG["global"]["slack_api_url_file"].startswith("/run/secrets/")
    assert CONFIG["global"]["smtp_auth_password_file"].startswith("/run/secrets/")


# --- Inhibitions and routes as bench/routes.py evaluates them (the bench's latency bound and the
# live tests read group_wait through it): the same cases amtool checks above.


@pytest.mark.parametrize("case", INHIBITS, ids=lambda c: c["why"])
def test_inhibition(case):
    assert routes.inhibited(CONFIG["inhibit_rules"], case["source"], case["target"]) is case["inhibited"]


@pytest.mark.parametrize("case", ROUTES, ids=lambda c: "-".join(str(v) for v in c["labels"].values()))
def test_route_evaluation_agrees_with_amtool_cases(case):
    assert [routes.route(CONFIG["route"], case["labels"])["receiver"]] == case["receivers"]


def test_route_settings_are_inherited_unless_the_route_sets_them():
    watchdog = routes.route(CONFIG["route"], {"alertname": "Watchdog", "severity": "none"})
    critical = routes.route(CONFIG["route"], {"alertname": "X", "severity": "critical"})
    assert watchdog["group_wait"] == "0s" and watchdog["repeat_interval"] == "24h"
    assert critical["group_wait"] == CONFIG["route"]["group_wait"] and critical["repeat_interval"] == "1h"


def test_inhibitions_name_only_alerts_that_exist():
    # Renaming an alert must not silently disable an inhibition.
    names = {r["alert"] for r in RULE_ALERTS}
    for rule in CONFIG["inhibit_rules"]:
        for matcher in rule.get("source_matchers", []) + rule.get("target_matchers", []):
            label, _, value = routes.parse_matcher(matcher)
            if label == "alertname":
                assert set(value.split("|")) <= names, matcher


def test_every_inhibition_can_apply_to_some_pair_of_real_alerts():
    # An inhibition whose source and target matchers fit no pair of the rules' alerts (by name and
    # severity) is dead configuration.
    labelled = [{"alertname": r["alert"], **r.get("labels", {})} for r in RULE_ALERTS]
    for rule in CONFIG["inhibit_rules"]:
        pairs = [
            (s["alertname"], t["alertname"])
            for s in labelled
            for t in labelled
            if routes.matches(rule.get("source_matchers", []), s)
            and routes.matches(rule.get("target_matchers", []), t)
            and s is not t
            and all(s[label] == t[label] for label in rule.get("equal", []) if label in ("alertname", "severity"))
        ]
        assert pairs, f"inhibition matches no pair of alerts: {rule}"


# --- Messages and the webhook's token ------------------------------------------------------------

TEMPLATES = sorted((REPO / "alertmanager" / "templates").glob("*.tmpl"))
TOKEN_FILE = "/run/secrets/alert_webhook_token"


def test_templates_are_loaded_from_the_templates_folder():
    assert CONFIG["templates"] == ["templates/*.tmpl"] and TEMPLATES


@pytest.mark.parametrize("receiver", CONFIG["receivers"], ids=lambda r: r["name"])
def test_every_webhook_sends_the_bearer_token_from_a_file(receiver):
    for hook in receiver["webhook_configs"]:
        assert hook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_FILE}
        assert 0 < hook["max_alerts"] <= 100


def test_email_and_slack_use_the_bundle_templates():
    critical = next(r for r in CONFIG["receivers"] if r["name"] == "critical")
    (mail,) = critical["email_configs"]
    assert mail["headers"]["Subject"] == '{{ template "celery.email.subject" . }}'
    assert (
        mail["html"] == '{{ template "celery.email.html" . }}'
        and mail["text"] == '{{ template "celery.email.text" . }}'
    )
    (slack,) = critical["slack_configs"]
    assert (
        slack["title"] == '{{ template "celery.title" . }}' and slack["text"] == '{{ template "celery.slack.text" . }}'
    )


@needs_amtool
@pytest.mark.parametrize(
    "name",
    [
        "celery.title",
        "celery.email.subject",
        "celery.email.text",
        "celery.email.html",
        "celery.slack.text",
        "celery.slack.color",
    ],
)
def test_template_renders_with_amtool(name):
    # amtool's example data: two firing alerts; the title counts them.
    result = amtool(
        "template",
        "render",
        f"--template.glob={REPO / 'alertmanager' / 'templates' / '*.tmpl'}",
        f'--template.text={{{{ template "{name}" . }}}}',
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    if name == "celery.title":
        assert re.match(r"^\[(FIRING|RESOLVED)[:\]]", result.stdout.strip()), result.stdout
