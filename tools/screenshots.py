"""`make screenshots`: the docs' pictures, taken from the live native stack in headless Chromium.

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

Each picture is recorded in docs/screenshots/screenshots.json (written by this script, not by hand):
the day it was taken, the page it shows at its default address, its SHA-256, and the names on it that
come from the code (workers, tasks, alerts, the alert rules Prometheus had loaded, runbook links).
tests/docs/test_screenshots.py fails when a picture differs from its record, when a name it shows
no longer exists, or when a caption in the docs does not give the day it was taken.

Run as `python -m tools.screenshots` from the repository (what `make screenshots` does).
Options: --only notifications (just step 5, without the stack), --out DIR (default docs/screenshots),
--alert-timeout SECONDS (default 480), --app, --flower, --prometheus (default the native stack on
127.0.0.1; a second stack, NATIVE_INSTANCE with NATIVE_PORT_OFFSET, moves them). Exit code 1 with a
one-line reason when the stack is not up or no alert fired in time (the other pictures are still
saved and recorded).
"""

import argparse
import datetime
import hashlib
import json
import pathlib
import re
import sys
import time

import requests
from playwright.sync_api import sync_playwright

from mixin.config import Config
from native import env as native_env, paths, poll, services
from native.ports import BASE_PORTS, PORTS
from tests.rigs.browser import launch, submit_form

VIEWPORT = {"width": 1280, "height": 860}
# Alerts the script can cause itself, in order of preference.
SUCCESS_RATE_ALERTS = ("CeleryTaskSuccessRateLow", "CelerySuccessRateLow")
# One batch of failing tasks: enough finished tasks in 5m for the rules' minimum-traffic guard (20).
FAILING_BATCH = {"task": "process_task", "count": 40, "timeout": 0.1, "fail_rate": 0.5}
BATCH_EVERY = 60.0
MANIFEST = "screenshots.json"
# The worker named in the notification pictures: worker 1 of a native stack on host "vm".
EXAMPLE_WORKER = services.worker_nodename(1).replace("%h", "vm")


def default_url(service, path=""):
    """The address a reader opens on the default stack (not a second stack's moved port)."""
    return f"http://localhost:{BASE_PORTS[service]}{path}"


class Manifest:
    """docs/screenshots/screenshots.json: one record per picture, updated as each one is saved."""

    def __init__(self, out):
        self.path = out / MANIFEST
        self.records = json.loads(self.path.read_text()) if self.path.exists() else {}

    def record(self, picture, page, **shows):
        digest = hashlib.sha256(picture.read_bytes()).hexdigest()
        self.records[picture.name] = {
            "taken": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
            "page": page,
            "sha256": digest,
            "shows": {key: value for key, value in shows.items() if value not in (None, [], "")},
        }
        self.path.write_text(json.dumps(dict(sorted(self.records.items())), indent=2, sort_keys=True) + "\n")


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
    return online


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


def shoot_form(page, args, out, manifest):
    ids = submit_form(page, args.app, count=6, task_num_start=1, timeout=2, fail_rate=0.5, memory_mb=0)
    page.screenshot(path=str(out / "app-form.png"), full_page=True)
    manifest.record(out / "app-form.png", default_url("app", "/"), tasks=["process_task"])
    say(f"app-form.png: submitted {len(ids)} tasks through the form")
    return ids


def shoot_flower(page, args, auth, out, ids, manifest, online):
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
    manifest.record(out / "flower-workers.png", default_url("flower", "/workers"), workers=online)
    say("flower-workers.png: Flower's Workers page")
    page.goto(f"{args.flower}/task/{failed[0]}", wait_until="domcontentloaded")
    page.wait_for_selector("text=Task details")
    page.wait_for_selector("text=SimulatedTaskError")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "flower-task.png"), full_page=True)
    info = requests.get(f"{args.flower}/api/task/info/{failed[0]}", timeout=10, auth=auth).json()
    manifest.record(
        out / "flower-task.png",
        default_url("flower", "/task/<task-id>"),
        tasks=[info.get("name")],
        workers=[info.get("worker")],
    )
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


def loaded_alert_rules(prometheus):
    """The alerting rules Prometheus has loaded, one per rule (as its alerts page counts them)."""
    groups = requests.get(f"{prometheus}/api/v1/rules", params={"type": "alert"}, timeout=10).json()["data"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def shoot_alerts(page, args, out, name, manifest):
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
    loaded = loaded_alert_rules(args.prometheus)
    shown = next(rule for rule in loaded if rule["name"] == name)
    manifest.record(
        out / "prometheus-alerts.png",
        default_url("prometheus", "/classic/alerts" if classic else "/alerts"),
        alerts=[name],
        alert_rules=sorted(rule["name"] for rule in loaded),
        runbook_urls=[shown["annotations"].get("runbook_url")],
    )
    say(f"prometheus-alerts.png: {name} firing")


WITH_BLOCK = re.compile(r"\{\{\s*with \$labels\.(\w+)\s*\}\}(.*?)\{\{\s*end\s*\}\}", re.S)


def with_blocks(a):
    """The alert with its annotations' `{{ with $labels.x }}...{{ . }}...{{ end }}` rendered as
    Prometheus would (the rig renders $labels and $value only)."""

    def render(text):
        def block(m):
            value = a["labels"].get(m.group(1), "")
            return re.sub(r"\{\{\s*\.\s*\}\}", value, m.group(2)) if value else ""

        return WITH_BLOCK.sub(block, text)

    return {**a, "annotations": {k: render(v) for k, v in a["annotations"].items()}}


def shoot_notifications(browser, out, manifest):
    import tempfile

    from tests.rigs.notifications import Rig, alert, ended, wait_for

    jobs = Config().jobs
    critical = with_blocks(alert("CeleryQueueNoConsumer", job=jobs.rabbitmq_queues, vhost="/", queue="reports"))
    warning = with_blocks(
        alert("CeleryTaskSuccessRateLow", job=jobs.exporter, name="process_task", queue_name="celery")
    )
    info = with_blocks(alert("CeleryThroughputBelowBaseline", job=jobs.exporter))
    worker = with_blocks(
        alert(
            "CeleryWorkerCpuHigh",
            job=jobs.worker,
            instance=f"127.0.0.1:{BASE_PORTS['worker_metrics']}",
            worker=EXAMPLE_WORKER,
        )
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
        manifest.record(
            out / "notification-email.png",
            "an email from Alertmanager",
            alerts=[critical["labels"]["alertname"]],
            runbook_urls=[critical["annotations"].get("runbook_url")],
        )
        say(f"notification-email.png: {rig.mailbox.messages[0]['message']['Subject']}")
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{rig.app_url}/alerts")
        page.screenshot(path=str(out / "app-alerts.png"))
        shown = [info, worker, critical, warning]
        manifest.record(
            out / "app-alerts.png",
            default_url("app", "/alerts"),
            alerts=sorted({a["labels"]["alertname"] for a in shown}),
            workers=[EXAMPLE_WORKER],
            runbook_urls=sorted(
                {a["annotations"]["runbook_url"] for a in shown if a["annotations"].get("runbook_url")}
            ),
        )
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
    manifest = Manifest(args.out)
    if args.only == "notifications":
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                shoot_notifications(browser, args.out, manifest)
            finally:
                browser.close()
        return 0
    try:
        auth = native_env.flower_auth(native_env.build())
        online = check_stack(args, auth)
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                context = browser.new_context(
                    viewport=VIEWPORT, http_credentials={"username": auth[0], "password": auth[1]} if auth else None
                )
                page = context.new_page()
                ids = shoot_form(page, args, args.out, manifest)
                shoot_flower(page, args, auth, args.out, ids, manifest, online)
                name = make_alert_fire(args)
                shoot_alerts(page, args, args.out, name, manifest)
                shoot_notifications(browser, args.out, manifest)
            finally:
                browser.close()
    except (Failed, ValueError) as exc:
        say(f"error: {exc}")
        return 1
    say(f"done: {', '.join(sorted(f.name for f in args.out.glob('*.png')))} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
