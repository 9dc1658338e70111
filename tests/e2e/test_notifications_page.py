"""The app's /alerts page in headless Chromium, filled by a real Alertmanager's webhook posts:
newest first, status, severity, summary, labels and working links."""

import shutil
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.test_notifications import CRITICAL, INFO, WARNING, ended
from tests.rigs.browser import CHROMIUM, launch
from tests.rigs.notifications import EXTERNAL_URL, Rig, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus-alertmanager") is None or shutil.which(CHROMIUM) is None,
    reason="prometheus-alertmanager or chromium is not installed (make deps)",
)


@pytest.fixture(scope="module")
def page_after_notifications(tmp_path_factory):
    with Rig(tmp_path_factory.mktemp("alerts-page")) as rig:
        rig.post_alerts([INFO])
        wait_for(lambda: len(rig.webhook_notifications()) >= 1, 30, "the info notification")
        rig.post_alerts([CRITICAL, WARNING])
        wait_for(lambda: len(rig.webhook_notifications()) >= 3, 30, "the critical and warning notifications")
        rig.post_alerts([ended(CRITICAL)])
        wait_for(
            lambda: any(n["status"] == "resolved" for n in rig.webhook_notifications()), 30, "the resolved notification"
        )
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                page = browser.new_page()
                page.goto(f"{rig.app_url}/alerts")
                yield rig, page
            finally:
                browser.close()


def test_newest_first(page_after_notifications):
    rig, page = page_after_notifications
    sections = page.locator("section.notification")
    assert sections.count() == 4
    statuses = [sections.nth(i).get_attribute("data-status") for i in range(4)]
    assert statuses[0] == "resolved"  # the last one received
    names = [sections.nth(i).locator(".alert").first.get_attribute("data-alertname") for i in range(4)]
    assert names[0] == "CeleryQueueNoConsumer" and names[-1] == "CeleryThroughputBelowBaseline"
    stamps = [float(sections.nth(i).locator(".received").get_attribute("data-ts")) for i in range(4)]
    assert stamps == sorted(stamps, reverse=True)


def test_status_severity_summary_and_labels_are_visible(page_after_notifications):
    _, page = page_after_notifications
    firing = page.locator('section[data-status="firing"] .alert[data-alertname="CeleryQueueNoConsumer"]')
    assert firing.is_visible()
    text = firing.inner_text()
    assert "firing" in text and "critical" in text
    assert CRITICAL["annotations"]["summary"] in text and "42 messages wait" in text
    assert "cluster=eu-1" in text and "namespace=celery" in text
    warning = page.locator('.alert[data-alertname="CeleryTaskSuccessRateLow"]')
    assert "warning" in warning.inner_text() and "name=process_task" in warning.inner_text()
    resolved = page.locator('section[data-status="resolved"] .alert').first
    assert resolved.get_attribute("data-status") == "resolved" and "resolved" in resolved.inner_text()


def test_links_lead_to_the_runbook_dashboard_flower_and_a_silence(page_after_notifications):
    rig, page = page_after_notifications
    alert = page.locator('.alert[data-alertname="CeleryTaskSuccessRateLow"]')
    hrefs = {a.inner_text(): a.get_attribute("href") for a in alert.locator(".links a").all()}
    ann = WARNING["annotations"]
    assert hrefs["Runbook"] == ann["runbook_url"] and hrefs["Dashboard"] == ann["dashboard_url"]
    if "flower_url" in ann:
        assert hrefs["Flower"] == ann["flower_url"]
    assert hrefs["Silence"].startswith(f"{EXTERNAL_URL}/#/silences/new?filter=")
    assert 'alertname="CeleryTaskSuccessRateLow"' in unquote(hrefs["Silence"])
    # The runbook link opens the runbook page (served by this app under the same path).
    page.goto(f"{rig.app_url}{urlsplit(hrefs['Runbook']).path}")
    assert page.locator("h1").inner_text() == "CeleryTaskSuccessRateLow"
    assert page.locator("#runbook h2").count() >= 2
