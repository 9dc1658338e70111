"""The web form in real headless Chromium: submit, see ids and Flower links, see errors."""

import pytest
from playwright.sync_api import sync_playwright

from native.ports import PORTS
from tests.live import APP, wait_finished
from tests.rigs.browser import launch, submit_form

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def page(stack):
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        yield page
        browser.close()


def test_form_submits_tasks_and_lists_their_ids_with_flower_links(page):
    ids = submit_form(page, APP, count=3, task_num_start=41, timeout=0.2, fail_rate=0)
    assert len(ids) == 3
    links = page.locator("a.task-link")
    hrefs = [links.nth(i).get_attribute("href") for i in range(3)]
    assert hrefs == [f"http://localhost:{PORTS['flower']}/task/{i}" for i in ids]
    done = wait_finished(ids, 60)
    assert sorted(b["result"]["task_num"] for b in done.values()) == [41, 42, 43]
    # The link opens the task in Flower.
    # (Flower's page also references external assets; the closed network never "loads" them.)
    page.goto(hrefs[0].replace("localhost", "127.0.0.1"), wait_until="domcontentloaded")
    page.wait_for_selector("text=Task details")
    assert ids[0] in page.content() and "SUCCESS" in page.content()


def test_form_shows_the_error_and_keeps_the_values(page):
    page.goto(APP + "/")
    page.fill("#count", "5")
    page.fill("#fail_rate", "")
    page.evaluate("document.querySelector('#fail_rate').removeAttribute('max')")
    page.fill("#fail_rate", "3")
    page.click("#submit")
    error = page.locator("#error")
    error.wait_for()
    assert error.get_attribute("data-field") == "fail_rate"
    assert "fail_rate must be between 0.0 and 1.0" in error.inner_text()
    assert page.input_value("#count") == "5"
    assert page.locator("#task-ids").count() == 0
