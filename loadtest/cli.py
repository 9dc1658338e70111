"""`python -m loadtest [SCENARIO] [options]`: parse the options, drive the load, print the summary.

Exit codes: 0 all went well (tasks failing on purpose included); 1 the API rejected requests or
tasks were lost (not finished within --wait-timeout); 2 bad options or the app unreachable;
130 interrupted by Ctrl-C (the summary is still printed).
"""

import argparse
import math
import os
import signal
import sys
import threading
import time
import urllib.parse

from rich.console import Console
from rich.live import Live

from loadtest import report, scenarios
from loadtest.runner import ApiClient, SubmitStats, Unreachable, firing_alerts, submit_all
from loadtest.tracker import Tracker
from native.ports import PORTS
from worker import settings

# The native stack's app and Prometheus, the defaults of --url and --prometheus.
APP_URL = f"http://127.0.0.1:{PORTS['app']}"
PROMETHEUS_URL = f"http://127.0.0.1:{PORTS['prometheus']}"

PROG = "loadtest"
POLL_INTERVAL = 0.5  # seconds between two looks at the unfinished tasks (at least)
INTERRUPT_GRACE = 5.0  # after Ctrl-C: how long to wait for tasks already submitted


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line naming the option; argparse's default also prints the whole usage block.
        self.exit(report.EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _number(convert, low=None, high=None, low_open=False):
    """An argparse type: a finite number within bounds (low excluded when low_open)."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a{' whole' if convert is int else ''} number, got {text!r}"
            ) from None
        if (
            not math.isfinite(value)
            or (low is not None and (value <= low if low_open else value < low))
            or (high is not None and value > high)
        ):
            if high is None:
                bound = f"{'>' if low_open else '>='} {low}"
            else:
                bound = f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


def _url(text):
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def build_parser():
    lines = [f"  {s.name:<9} {s.help}" for s in scenarios.SCENARIOS.values()]
    p = _Parser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Drive load through the app's POST /api/tasks and summarise what happened.",
        epilog="scenarios (options override their defaults):\n"
        + "\n".join(lines)
        + "\n\nexit codes: 0 ok, 1 API rejected requests or tasks lost, 2 bad options, 130 Ctrl-C",
    )
    p.add_argument(
        "scenario",
        nargs="?",
        default="steady",
        choices=list(scenarios.SCENARIOS),
        metavar="SCENARIO",
        help="one of: %(choices)s (default: %(default)s)",
    )
    p.add_argument("--rate", type=_number(float, 0, low_open=True), help="tasks per second")
    p.add_argument("--duration", type=_number(float, 0, low_open=True), help="seconds of submitting")
    p.add_argument("--count", type=_number(int, 1, scenarios.MAX_TASKS_PER_RUN), help="number of tasks")
    p.add_argument("--concurrency", type=_number(int, 1, 64), default=4, help="requests in flight (default: 4)")
    p.add_argument("--timeout", type=_number(float, 0, settings.MAX_TIMEOUT_SECONDS), help="seconds each task runs")
    p.add_argument("--fail-rate", type=_number(float, 0, 1), help="share of tasks that fail (0-1)")
    p.add_argument(
        "--memory-mb", type=_number(int, 0, settings.MAX_MEMORY_MB_PER_TASK), help="MB each task leaves in its worker"
    )
    p.add_argument("--url", type=_url, default=APP_URL, help="the app (default: %(default)s)")
    p.add_argument(
        "--prometheus",
        type=_url,
        default=PROMETHEUS_URL,
        help="for the alerts firing at the end (default: %(default)s)",
    )
    p.add_argument(
        "--wait-timeout",
        type=_number(float, 0),
        help="seconds to wait for the tasks after "
        "the last submit; unfinished ones then count as lost (default: per scenario)",
    )
    p.add_argument("--no-wait", dest="wait", action="store_false", help="do not wait for the tasks to finish")
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON to FILE")
    return p


def parse(argv):
    """Options -> (args, Plan). Exits 2 with one line on stderr when something is wrong."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = scenarios.resolve(
            args.scenario,
            rate=args.rate,
            duration=args.duration,
            count=args.count,
            timeout=args.timeout,
            fail_rate=args.fail_rate,
            memory_mb=args.memory_mb,
            wait_timeout=args.wait_timeout,
        )
    except scenarios.PlanError as exc:
        parser.error(str(exc))
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        parser.error(f"argument --json: directory {os.path.dirname(os.path.abspath(args.json))!r} does not exist")
    return args, plan


def run(plan, client, wait=True, concurrency=4, prometheus=PROMETHEUS_URL, live=None, alerts=firing_alerts):
    """Submit the plan, track the tasks, return the summary dict. `live` (optional) gets progress renders."""
    stats = SubmitStats()
    tracker = Tracker(client.task)
    stop = threading.Event()

    def send(batch):
        sent_at = time.time()
        status, body = client.submit(batch.payload())
        # A 503 reports the ids it enqueued before the broker went away: those tasks exist.
        ids = body.get("task_ids") or body.get("enqueued") or []
        tracker.add(ids, batch.task, sent_at)
        with stats.lock:
            stats.requests += 1
            stats.submitted += len(ids)
            if ids:
                stats.last_sent = time.monotonic()
            if status != 202:
                stats.rejected_tasks += batch.count - len(ids)
                key = f"HTTP {status}: {body.get('error')}" if status else f"no answer: {body.get('error')}"
                stats.errors[key] = stats.errors.get(key, 0) + 1
                if status and 400 <= status < 500:
                    stop.set()  # every later request would be rejected the same way

    def on_start(monotonic_start):
        stats.started = monotonic_start

    started_at = time.time()
    submitter = threading.Thread(
        target=submit_all,
        daemon=True,
        name="submitter",
        args=(scenarios.batches(plan), send, concurrency, stop),
        kwargs={"on_start": on_start},
    )
    submitter.start()

    def show():
        if live is not None:
            live.update(report.progress(plan.count, tracker.counts(), time.time() - started_at, stats.rejected_tasks))

    interrupted = False
    deadline = None
    try:
        while True:
            polled = time.monotonic()
            tracker.poll()
            show()
            if not submitter.is_alive():
                if not wait:
                    break
                if deadline is None:
                    deadline = time.monotonic() + plan.wait_timeout
                if not tracker.unfinished() or time.monotonic() >= deadline:
                    break
            # Polling many unfinished ids takes a while; never spend more than half the time on it.
            time.sleep(max(POLL_INTERVAL, time.monotonic() - polled))
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        try:  # a short grace: requests in flight return, quick tasks finish; Ctrl-C again skips it
            submitter.join()
            grace_end = time.monotonic() + min(INTERRUPT_GRACE, plan.wait_timeout)
            while wait and tracker.unfinished() and time.monotonic() < grace_end:
                time.sleep(POLL_INTERVAL)
                tracker.poll()
                show()
        except KeyboardInterrupt:
            pass
    tracker.close()
    try:
        firing, alerts_error = alerts(prometheus), None
    except Unreachable as exc:
        firing, alerts_error = None, str(exc)
    return report.summarize(
        plan,
        client.base_url,
        stats,
        list(tracker.records.values()),
        started_at,
        waited=wait,
        interrupted=interrupted,
        alerts=firing,
        alerts_error=alerts_error,
    )


def main(argv=None):
    # Background jobs of a non-interactive shell start with SIGINT ignored; `kill -INT` must still
    # stop the load and print the summary, as Ctrl-C does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args, plan = parse(argv)
    client = ApiClient(args.url)
    try:
        client.check()
    except Unreachable as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return report.EXIT_USAGE
    err = Console(stderr=True)
    out = Console(width=None if sys.stdout.isatty() else 120)
    target = f"{plan.rate:g}/s" if plan.rate else "all at once"
    err.print(f"[bold]{plan.scenario}[/]: {plan.count} tasks, {target}, to {args.url}", highlight=False)
    try:
        if err.is_terminal:
            with Live(console=err, refresh_per_second=4, transient=True) as live:
                summary = run(plan, client, args.wait, args.concurrency, args.prometheus, live)
        else:
            summary = run(plan, client, args.wait, args.concurrency, args.prometheus)
    except KeyboardInterrupt:  # a Ctrl-C while the summary was being made (after the first one)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return report.EXIT_INTERRUPTED
    out.print(report.table(summary))
    code = summary["exit_code"]
    if args.json:
        try:
            report.write_json(summary, args.json)
        except OSError as exc:
            print(f"{PROG}: error: cannot write --json {args.json}: {exc.strerror}", file=sys.stderr)
            code = code or report.EXIT_PROBLEM
    return code
