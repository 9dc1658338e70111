"""Watching alerts live: Prometheus fires them, Alertmanager delivers them to the app's webhook.

Expected labels and annotations, and how long to wait, come from the rules the stack really runs
(.native/generated/rules: the fast profile rendered by the mixin).
"""

import re
import time

import requests
import yaml

from bench import routes
from mixin.config import Config
from mixin.durations import seconds
from native import paths
from tests.live import APP, PROMETHEUS, wait_for

SCRAPE_MAX = "5s"  # the slowest scrape interval
EVALUATION = "5s"
ROUTES = yaml.safe_load((paths.REPO / "alertmanager" / "alertmanager.yml").read_text())["route"]


def running_rules():
    """{alert name: [its rules]}: an SLO alert has one rule per objective, SLI and window pair."""
    rules = {}
    for path in sorted((paths.GENERATED / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rules.setdefault(rule["alert"], []).append(rule)
    assert rules, "the stack does not run the fast alerting profile (ALERT_PROFILE=fast)"
    return rules


def running_rule(alertname, want):
    """The rule of `alertname` whose own labels agree with `want` (the only one, for most alerts)."""
    found = [r for r in running_rules()[alertname] if all(r.get("labels", {}).get(k, v) == v for k, v in want.items())]
    assert len(found) == 1, f"{len(found)} rules of {alertname} match {want}"
    return found[0]


def bound(rule, route):
    """Seconds from condition to notification at worst, with the rule's longest window."""
    windows = re.findall(r"\[(\d+[smhd](?:\d+[smhd])?)", rule["expr"])
    window = max(windows, key=seconds, default="0s")
    return routes.latency_bound(SCRAPE_MAX, EVALUATION, rule.get("for", "0s"), route["group_wait"], window)["bound_s"]


def matches(labels, want):
    return all(labels.get(k) == v for k, v in want.items())


def prometheus_alerts(name, want):
    active = requests.get(f"{PROMETHEUS}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a for a in active if a["labels"]["alertname"] == name and matches(a["labels"], want)]


def delivered(name, want, status, since):
    notifications = requests.get(f"{APP}/api/alerts", timeout=10).json()["notifications"]
    return [
        a
        for n in notifications
        if n["received_at"] >= since
        for a in n["alerts"]
        if a["labels"]["alertname"] == name and a["status"] == status and matches(a["labels"], want)
    ]


class AlertCheck:
    """fire() then resolve(): each waits for Prometheus and for the webhook, and checks the payload."""

    def __init__(self, alertname, /, slack=60, **want):
        self.name, self.want = alertname, want
        self.rule = running_rule(alertname, want)
        self.route = routes.route(ROUTES, {"alertname": alertname, **self.rule.get("labels", {})})
        self.timeout = bound(self.rule, self.route) + slack
        self.since = time.time()

    def fire(self, timeout=None):
        t0 = time.monotonic()
        timeout = timeout or self.timeout
        wait_for(
            lambda: any(a["state"] == "firing" for a in prometheus_alerts(self.name, self.want)),
            timeout,
            1,
            message=f"{self.name}{self.want} to fire in Prometheus",
        )
        [alert] = wait_for(
            lambda: delivered(self.name, self.want, "firing", self.since)[:1],
            60,
            1,
            message=f"{self.name}{self.want} to reach the webhook",
        )
        self.check_payload(alert)
        self.fired_after = time.monotonic() - t0
        return alert

    def resolve(self, timeout=None):
        timeout = timeout or self.timeout + seconds(self.route["group_interval"])
        wait_for(
            lambda: not prometheus_alerts(self.name, self.want),
            timeout,
            1,
            message=f"{self.name}{self.want} to end in Prometheus",
        )
        try:
            wait_for(
                lambda: delivered(self.name, self.want, "resolved", self.since),
                60,
                1,
                message=f"the resolved {self.name}{self.want} to reach the webhook",
            )
        except AssertionError as exc:
            seen = [
                (a["status"], a["labels"])
                for n in requests.get(f"{APP}/api/alerts", timeout=10).json()["notifications"]
                if n["received_at"] >= self.since
                for a in n["alerts"]
                if a["labels"]["alertname"] == self.name
            ]
            raise AssertionError(f"{exc}\nnotifications for {self.name} since the check began: {seen}") from None

    def check_payload(self, alert):
        labels, notes = alert["labels"], alert["annotations"]
        assert labels["severity"] == self.rule["labels"]["severity"]
        assert notes["summary"] and "{{" not in notes["summary"]
        assert re.search(r"\d", notes["description"]) and "{{" not in notes["description"]
        assert notes["runbook_url"].endswith(f"/runbooks/{self.name}")
        assert (paths.REPO / "docs" / "runbooks" / f"{self.name}.md").exists()
        assert notes["dashboard_url"].startswith(f"{Config().urls.grafana}/d/")
