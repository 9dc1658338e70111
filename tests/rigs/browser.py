"""Headless Debian Chromium through Playwright (no browser download), and the app's form in it."""

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out, which this network refuses.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def submit_form(page, app_url, task="process_task", **fields):
    """Fill the app's form at `app_url` (each field by its id) and submit it; return the task ids listed."""
    page.goto(f"{app_url}/")
    page.select_option("#task", task)
    for name, value in fields.items():
        page.fill(f"#{name}", str(value))
    page.click("#submit")
    page.wait_for_selector("#task-ids")
    links = page.locator("a.task-link")
    return [links.nth(i).inner_text().strip() for i in range(links.count())]
