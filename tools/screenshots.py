"""`make screenshots`: the README's pictures, taken from the live native stack in headless Chromium.

With the stack up (`make up`, best with WORKERS=3), this script
1. submits 6 `process_task` tasks through the app's form, half of them failing, and shoots the form
   with the submitted ids (app-form.png);
2. waits for them, then shoots Flower's Workers page (flower-workers.png) and the task page of a
   failed task, with its exception and traceback (flower-task.png);
3. makes an alert fire if none but the Watchdog is firing: it submits batches of failing tasks
   through the app's API until CeleryTaskSuccessRateLow or CelerySuccessRateLow fires (at least
   2 minutes with the standard rules), within --alert-timeout seconds;
4. shoots Prometheus's alerts page with that alert opened (prometheus-alerts.png);
5. shoots a rendered alert email (notification-email.png) and the app's /alerts page
   (app-alerts.png): a private Alertmanager on free ports with the bundle's config and templates
   delivers a critical, a warning and an info alert (and a resolution) to a local SMTP server and to
   the app (tests/rigs/notifications.py); this part needs no running stack.

Run as `python -m tools.screenshots` from the repository (what `make screenshots` does).
Options: --only notifications (just step 5, without the stack), --out DIR (default docs/screenshots),
--alert-timeout SECONDS (default 480), --app, --flower, --prometheus (default the native stack on
127.0.0.1). Exit code 1 with a one-line reason when the stack is not up or no alert fired in time
(the other pictures are still saved).
"""

import argparse
import pathlib
import re
import sys
import time

import requests
from playwright.sync_api import sync_playwright

from mixin.config import Config
from native import env as native_env, paths, poll
from native.ports import PORTS
from tests.rigs.browser import launch, submit_form

VIEWPORT = {"width": 1280, "height": 860}
# Alerts the script can cause itself, in order of preference.
SUCCESS_RATE_ALERTS = ("CeleryTaskSuccessRateLow", "CelerySuccessRateLow")
# One batch of failing tasks: enough finished tasks in 5m for the rules' minimum-traffic guard (20).
FAILING_BATCH = {"task": "process_task", "count": 40, "timeout": 0.1, "fail_rate": 0.5}
BATCH_EVERY = 60.0


def say(message):
    print(f"screenshots: {message}", flush=True)


class Failed(Exception):
    """A one-line reason to stop."""


def check_stack(args, auth):
    for name, url, kwargs in (
        ("app", f"{args.app}/healthz", {}),
        ("Flower", f"{args.flower}/healthcheck", {}),
        ("Prometheus", f"{args.prometheus}/-/ready", {}),
        ("Flower's API", f"{args.flower}/api/workers?status=true", {"auth": auth}),
    ):
        try:
            r = requests.get(url, timeout=10, **kwargs)
        except requests.RequestException as exc:
            raise Failed(
                f"{name} does not answer at {url} ({exc.__class__.__name__}): start the stack with "
                "`WORKERS=3 make up` first"
            ) from None
        if r.status_code != 200:
            raise Failed(f"{name} answered {r.status_code} at {url}")
    workers = requests.get(f"{args.flower}/api/workers?status=true", timeout=10, auth=auth).json()
    online = sorted(name for name, alive in workers.items() if alive)
    say(f"workers online in Flower: {len(online)} ({', '.join(online)})")
    if not online:
        raise Failed("no worker is online: start the stack with `WORKERS=3 make up`")


def wait_finished(app, ids, timeout=180):
    states = {}

    def all_finished():
        for task_id in ids:
            if task_id not in states:
                body = requests.get(f"{app}/api/tasks/{task_id}", timeout=10).json()
                if body.get("state") in ("SUCCESS", "FAILURE", "REVOKED"):
                    states[task_id] = body["state"]
        return len(states) == len(ids)

    try:
        poll.until(all_finished, timeout)
    except poll.TimedOut:
        raise Failed(f"{len(ids) - len(states)} of the submitted tasks did not finish within {timeout}s") from None
    return states


def wait_flower_knows(flower, auth, task_id, state, timeout=60):
    def known():
        r = requests.get(f"{flower}/api/task/info/{task_id}", timeout=10, auth=auth)
        return r.status_code == 200 and r.json().get("state") == state

    try:
        poll.until(known, timeout)
    except poll.TimedOut:
        raise Failed(f"Flower did not show task {task_id} as {state} within {timeout}s") from None


def shoot_form(page, args, out):
    ids = submit_form(page, args.app, count=6, task_num_start=1, timeout=2, fail_rate=0.5, memory_mb=0)
    page.screenshot(path=str(out / "app-form.png"), full_page=True)
    say(f"app-form.png: submitted {len(ids)} tasks through the form")
    return ids


def shoot_flower(page, args, auth, out, ids):
    states = wait_finished(args.app, ids)
    failed = [i for i in ids if states[i] == "FAILURE"]
    if not failed:
        raise Failed("none of the tasks submitted with fail_rate 0.5 failed")
    wait_flower_knows(args.flower, auth, failed[0], "FAILURE")
    # Flower's pages reference external assets that may never load here: do not wait for "load".
    page.goto(f"{args.flower}/workers", wait_until="domcontentloaded")
    page.wait_for_selector("#workers-table tbody tr td a")
    page.wait_for_function("document.querySelector('#workers-online').textContent.trim() !== '—'")
    page.wait_for_timeout(1500)  # one more auto-refresh, so that the counters are current
    page.screenshot(path=str(out / "flower-workers.png"), full_page=True)
    say("flower-workers.png: Flower's Workers page")
    page.goto(f"{args.flower}/task/{failed[0]}", wait_until="domcontentloaded")
    page.wait_for_selector("text=Task details")
    page.wait_for_selector("text=SimulatedTaskError")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "flower-task.png"), full_page=True)
    say(f"flower-task.png: the failed task {failed[0]}")


def firing_alerts(prometheus):
    body = requests.get(f"{prometheus}/api/v1/alerts", timeout=10).json()
    return sorted(
        {
            a["labels"]["alertname"]
            for a in body["data"]["alerts"]
            if a["state"] == "firing" and a["labels"]["alertname"] != "Watchdog"
        }
    )


def pick(firing):
    for name in SUCCESS_RATE_ALERTS:
        if name in firing:
            return name
    return firing[0] if firing else None


def make_alert_fire(args):
    name = pick(firing_alerts(args.prometheus))
    if name:
        say(f"{name} is already firing")
        return name
    say(
        f"no alert but the Watchdog is firing: submitting failing tasks until {' or '.join(SUCCESS_RATE_ALERTS)} "
        f"fires (up to {args.alert_timeout:.0f}s; with the standard rules it takes a little over 2 minutes)"
    )
    started = time.monotonic()
    last_batch = None
    while time.monotonic() - started < args.alert_timeout:
        if last_batch is None or time.monotonic() - last_batch >= BATCH_EVERY:
            r = requests.post(f"{args.app}/api/tasks", json=FAILING_BATCH, timeout=30)
            if r.status_code != 202:
                raise Failed(f"the app refused the failing batch: HTTP {r.status_code} {r.text.strip()}")
            last_batch = time.monotonic()
        name = pick(firing_alerts(args.prometheus))
        if name:
            say(f"{name} fired after {time.monotonic() - started:.0f}s")
            return name
        time.sleep(5)
    raise Failed(
        f"no alert fired within {args.alert_timeout:.0f}s although half of the tasks failed; check that "
        f"Prometheus loads alerts/celery.rules.yml ({args.prometheus}/classic/rules) and that the exporter "
        "counts the tasks (celery_task_failed_total)"
    )


def shoot_alerts(page, args, out, name):
    classic = requests.get(f"{args.prometheus}/classic/alerts", timeout=10).status_code == 200
    if classic:
        # Debian's Prometheus 2.42 ships only the classic UI.
        page.goto(f"{args.prometheus}/classic/alerts")
        page.wait_for_selector("#alertsTable")
        page.click("label:has(#inactiveAlerts)")  # hide the rules that are not active
        page.click("div.show-annotations")
        header = page.locator("tr.alert_header").filter(
            has=page.locator("b", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))
        )
        header.first.click()
        # Keep the page's heading in the picture unless the alert is further down; then scroll it up
        # to just below the fixed navbar.
        header.first.evaluate(
            "el => { if (el.getBoundingClientRect().top > 400) { el.scrollIntoView(); window.scrollBy(0, -70); } }"
        )
    else:
        page.goto(f"{args.prometheus}/alerts")
        page.get_by_text(name, exact=True).first.click()
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "prometheus-alerts.png"))
    say(f"prometheus-alerts.png: {name} firing")


def shoot_notifications(browser, out):
    import tempfile

    from tests.rigs.notifications import Rig, alert, ended, wait_for

    jobs = Config().jobs
    critical = alert("CeleryQueueNoConsumer", job=jobs.rabbitmq_queues, vhost="/", queue="reports")
    warning = alert("CeleryTaskSuccessRateLow", job=jobs.exporter, name="process_task", queue_name="celery")
    info = alert("CeleryThroughputBelowBaseline", job=jobs.exporter)
    worker = alert(
        "CeleryWorkerCpuHigh",
        job=jobs.worker,
        instance=f"celery_worker:{PORTS['worker_metrics']}",
        worker="celery_worker-1@vm",
    )
    with tempfile.TemporaryDirectory() as tmp, Rig(pathlib.Path(tmp)) as rig:
        rig.post_alerts([info, worker])
        wait_for(lambda: len(rig.webhook_notifications()) >= 2, 30, "the first notifications")
        rig.post_alerts([ended(worker)])
        wait_for(lambda: len(rig.webhook_notifications()) >= 3, 30, "the resolved notification")
        rig.post_alerts([critical, warning])
        wait_for(lambda: rig.mailbox.messages and len(rig.webhook_notifications()) >= 5, 30, "the critical email")
        page = browser.new_page(viewport={"width": 900, "height": 300})
        page.set_content(rig.mailbox.messages[0]["message"].get_body(("html",)).get_content())
        page.screenshot(path=str(out / "notification-email.png"), full_page=True)
        say(f"notification-email.png: {rig.mailbox.messages[0]['message']['Subject']}")
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{rig.app_url}/alerts")
        page.screenshot(path=str(out / "app-alerts.png"))
        say("app-alerts.png: the app's /alerts page")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=("all", "notifications"), default="all")
    p.add_argument("--out", type=pathlib.Path, default=paths.REPO / "docs" / "screenshots")
    p.add_argument("--alert-timeout", type=float, default=480.0)
    for name in ("app", "flower", "prometheus"):
        p.add_argument(f"--{name}", default=f"http://127.0.0.1:{PORTS[name]}")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only == "notifications":
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                shoot_notifications(browser, args.out)
            finally:
                browser.close()
        return 0
    try:
        auth = native_env.flower_auth(native_env.build())
        check_stack(args, auth)
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                context = browser.new_context(
                    viewport=VIEWPORT, http_credentials={"username": auth[0], "password": auth[1]} if auth else None
                )
                page = context.new_page()
                ids = shoot_form(page, args, args.out)
                shoot_flower(page, args, auth, args.out, ids)
                name = make_alert_fire(args)
                shoot_alerts(page, args, args.out, name)
                shoot_notifications(browser, args.out)
            finally:
                browser.close()
    except (Failed, ValueError) as exc:
        say(f"error: {exc}")
        return 1
    say(f"done: {', '.join(sorted(f.name for f in args.out.glob('*.png')))} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
