"""Notifications delivered for real: Alertmanager (Debian's binary) with the bundle's config and
templates sends email to a real SMTP server (aiosmtpd), Slack messages to a local stand-in for Slack's
incoming-webhook URL, and webhook posts to the app; the test reads what arrived.

Routes: critical -> email + Slack + webhook, warning -> Slack + webhook, info -> webhook only; each
resolved alert is followed by its "resolved" message on the same integrations. Alerts are posted to
Alertmanager's API (the rules that produce them are proven by tests/live_alerts); everything runs on
free ports of 127.0.0.1, no shared stack needed.
"""

import re
import shutil
import time
from urllib.parse import unquote

import pytest
import requests

from tests.rigs.notifications import EXTERNAL_URL, Rig, alert, ended, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus-alertmanager") is None, reason="prometheus-alertmanager is not installed (make deps)"
)

# One alert per severity, with the labels the real rules give them (plus cluster/namespace on one).
CRITICAL = alert(
    "CeleryQueueNoConsumer", job="rabbitmq_queues", vhost="/", queue="reports", cluster="eu-1", namespace="celery"
)
WARNING = alert("CeleryTaskSuccessRateLow", job="celery_exporter", name="process_task", queue_name="celery")
INFO = alert("CeleryThroughputBelowBaseline", job="celery_exporter")
ALL = (CRITICAL, WARNING, INFO)


def name_of(a):
    return a["labels"]["alertname"]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with Rig(tmp_path_factory.mktemp("notifications")) as r:
        yield r


def mails(rig, status=None):
    return [
        m["message"] for m in rig.mailbox.messages if status is None or m["message"]["Subject"].startswith(f"[{status}")
    ]


def slack(rig, status):
    return [p["json"] for p in rig.slack_posts if p["json"]["attachments"][0]["title"].startswith(f"[{status}")]


def hooks(rig, status):
    return [n for n in rig.webhook_notifications() if n["status"] == status]


def parts(msg):
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return text, html


def silence_prefix():
    return f"{EXTERNAL_URL}/#/silences/new?filter="


@pytest.fixture(scope="module")
def fired(rig):
    rig.post_alerts(list(ALL))
    wait_for(
        lambda: len(hooks(rig, "firing")) >= 3 and mails(rig, "FIRING") and slack(rig, "FIRING"),
        30,
        "the firing notifications",
    )
    # Let a few group intervals pass so that a wrong extra delivery would show up too.
    time.sleep(5)
    return rig


def test_critical_reaches_email_slack_and_webhook(fired):
    rig = fired
    critical = [m for m in mails(rig, "FIRING")]
    assert [m["Subject"] for m in critical] == ["[FIRING:1] CRITICAL CeleryQueueNoConsumer"]
    assert [p["attachments"][0]["title"] for p in slack(rig, "FIRING")].count(
        "[FIRING:1] CRITICAL CeleryQueueNoConsumer"
    ) == 1
    receivers = {n["commonLabels"]["alertname"]: n["receiver"] for n in hooks(rig, "firing")}
    assert receivers == {
        "CeleryQueueNoConsumer": "critical",
        "CeleryTaskSuccessRateLow": "warning",
        "CeleryThroughputBelowBaseline": "info",
    }


def test_warning_reaches_slack_and_webhook_not_email(fired):
    rig = fired
    titles = [p["attachments"][0]["title"] for p in slack(rig, "FIRING")]
    assert "[FIRING:1] WARNING CeleryTaskSuccessRateLow" in titles
    assert not any("CeleryTaskSuccessRateLow" in m["Subject"] for m in mails(rig))


def test_info_reaches_only_the_webhook(fired):
    rig = fired
    assert not any("CeleryThroughputBelowBaseline" in p["json"]["attachments"][0]["title"] for p in rig.slack_posts)
    assert not any("CeleryThroughputBelowBaseline" in m["Subject"] for m in mails(rig))


def test_email_has_both_parts_with_the_alert_and_its_links(fired):
    rig = fired
    (msg,) = mails(rig, "FIRING")
    sent = next(m for m in rig.mailbox.messages if m["message"] is msg)
    assert sent["to"] == ["oncall@localhost"] and sent["from"] == "alertmanager@localhost"
    assert rig.mailbox.logins and all(ok for _, _, ok in rig.mailbox.logins)  # SMTP AUTH with the password
    text, html = parts(msg)
    ann = CRITICAL["annotations"]
    for body in (text, html):
        assert ann["summary"] in body
        assert "42 messages wait in queue reports" in body  # the description with the live value
        for label in ("queue=reports", "vhost=/", "cluster=eu-1", "namespace=celery"):
            assert label in body
    assert f"Runbook:   {ann['runbook_url']}" in text
    assert f"Dashboard: {ann['dashboard_url']}" in text
    silence = re.search(r"Silence:\s+(\S+)", text).group(1)
    assert silence.startswith(silence_prefix()) and "alertname%3D%22CeleryQueueNoConsumer%22" in silence
    assert "queue%3D%22reports%22" in silence
    links = dict((label, href) for href, label in re.findall(r'<a href="([^"]+)">(\w+)</a>', html))
    assert links["Runbook"] == ann["runbook_url"]
    assert links["Dashboard"] == ann["dashboard_url"]
    assert links["Silence"].replace("&amp;", "&").startswith(silence_prefix())
    assert (
        unquote(links["Silence"].split("filter=", 1)[1])
        == unquote(silence.split("filter=", 1)[1])
        == (
            '{alertname="CeleryQueueNoConsumer",cluster="eu-1",job="rabbitmq_queues",namespace="celery",'
            'queue="reports",severity="critical",vhost="/"}'
        )
    )


def test_slack_payload_has_title_color_text_and_links(fired):
    rig = fired
    post = next(p for p in slack(rig, "FIRING") if "WARNING" in p["attachments"][0]["title"])
    att = post["attachments"][0]
    assert att["color"] == "warning"
    ann = WARNING["annotations"]
    assert ann["summary"] in att["text"] and "62.5% of the process_task runs" in att["text"]
    assert "task=process_task" in att["text"] and "queue=celery" in att["text"]
    assert f"<{ann['runbook_url']}|Runbook>" in att["text"]
    assert f"<{ann['dashboard_url']}|Dashboard>" in att["text"]
    if "flower_url" in ann:
        assert f"<{ann['flower_url']}|Flower>" in att["text"]
    assert re.search(r"<" + re.escape(silence_prefix()) + r"[^|>]+\|Silence>", att["text"])


def test_webhook_posts_carry_the_bearer_token_and_are_shown_on_the_alerts_page(fired):
    rig = fired
    html = requests.get(f"{rig.app_url}/alerts", timeout=10).text
    for a in ALL:
        assert f'data-alertname="{name_of(a)}"' in html
        assert a["annotations"]["summary"] in html


@pytest.fixture(scope="module")
def resolved(fired):
    rig = fired
    rig.post_alerts([ended(a) for a in ALL])
    wait_for(
        lambda: len(hooks(rig, "resolved")) >= 3 and mails(rig, "RESOLVED") and len(slack(rig, "RESOLVED")) >= 2,
        30,
        "the resolved notifications",
    )
    time.sleep(4)
    return rig


def test_resolved_follows_on_every_integration_of_the_route(resolved):
    rig = resolved
    assert [m["Subject"] for m in mails(rig, "RESOLVED")] == ["[RESOLVED] CRITICAL CeleryQueueNoConsumer - resolved"]
    assert sorted(p["attachments"][0]["title"] for p in slack(rig, "RESOLVED")) == [
        "[RESOLVED] CRITICAL CeleryQueueNoConsumer - resolved",
        "[RESOLVED] WARNING CeleryTaskSuccessRateLow - resolved",
    ]
    assert {n["commonLabels"]["alertname"] for n in hooks(rig, "resolved")} == {name_of(a) for a in ALL}


def test_resolved_messages_say_all_clear(resolved):
    rig = resolved
    (msg,) = mails(rig, "RESOLVED")
    text, html = parts(msg)
    assert "All clear" in text and "All clear" in html
    assert "RESOLVED  CeleryQueueNoConsumer" in text and "Silence" not in text
    post = next(p for p in slack(rig, "RESOLVED") if "CRITICAL" in p["attachments"][0]["title"])
    assert post["attachments"][0]["color"] == "good" and "All clear" in post["attachments"][0]["text"]


def test_nothing_was_refused(resolved):
    log = resolved.log()
    assert "Notify for alerts failed" not in log and "level=error" not in log, log[-3000:]
