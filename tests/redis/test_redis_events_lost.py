"""On Redis, task events travel over pub/sub, which keeps no queue: a monitor that falls behind is
disconnected at `client-output-buffer-limit pubsub`, and the events published until it reconnects
are gone. The loss is made for real (Flower paused while tasks run, the limit lowered so that it
comes within seconds) and CeleryEventsLost must name Flower, and not the exporter, which kept up.
"""

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from native import paths, process
from native.broker import PUBSUB_BUFFER_LIMIT
from tests.alerting import AlertCheck, prometheus_alerts
from tests.live import prom_scalar, submit, wait_finished, wait_for
from tests.redis.conftest import redis_broker_url

pytestmark = pytest.mark.stack

# Low enough that the paused Flower passes it within seconds, high enough (a few seconds of events)
# that the exporter, reading all along on a machine busy with other tests, stays under it (Redis
# logs each client it cuts off).
TIGHT_LIMIT = "pubsub 1mb 0 0"
DISCONNECTED = "overcoming of output buffer limits"  # what Redis logs when it cuts a client off
RATE, DURATION = 80, 70  # tasks/s for s: events fill the paused Flower's socket buffers in seconds


def broker_cli(*args):
    url = urlsplit(redis_broker_url())
    result = subprocess.run(
        ["redis-cli", "-h", url.hostname, "-p", str(url.port), *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.heavy
def test_flower_cut_off_by_redis_fires_events_lost_for_flower_only(redis_stack):
    flower = process.running_pid("flower")
    assert flower, "Flower is not running"
    check = AlertCheck("CeleryEventsLost", job="flower")
    log = process.logfile("redis-broker")
    seen = log.stat().st_size
    started = "sum(celery_worker_tasks_started_total)"
    counted = 'sum(flower_events_total{type="task-started"})'
    exporter = "sum(celery_task_started_total)"
    # The monitors' series exist and are scraped before the load: a counter's first sample is where
    # increase() starts, so a series the load created would hide its first seconds from the alert.
    wait_finished(submit(task="process_task", count=5, timeout=0), 60)
    wait_for(lambda: prom_scalar(exporter) >= 5 and prom_scalar(counted) >= 5, 30, message="the monitors' counts")
    time.sleep(6)  # one more scrape of each
    before = {q: prom_scalar(q) for q in (started, counted, exporter)}

    assert broker_cli("CONFIG", "SET", "client-output-buffer-limit", TIGHT_LIMIT) == "OK"
    load = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest",
            "steady",
            "--rate",
            str(RATE),
            "--duration",
            str(DURATION),
            "--timeout",
            "0",
            "--concurrency",
            "4",
        ],
        cwd=paths.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(10)
        os.kill(flower, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            wait_for(
                lambda: DISCONNECTED in log.read_text(errors="replace")[seen:],
                50,
                1,
                message="Redis to disconnect the paused Flower",
            )
            cut_after = time.monotonic() - t0
            time.sleep(5)  # events published while Flower is cut off
        finally:
            os.kill(flower, signal.SIGCONT)
        out, _ = load.communicate(timeout=DURATION + 300)
        assert load.returncode == 0, out[-2000:]
    finally:
        if load.poll() is None:
            load.kill()
        broker_cli("CONFIG", "SET", "client-output-buffer-limit", f"pubsub {PUBSUB_BUFFER_LIMIT}")

    alert = check.fire()
    ran = prom_scalar(started) - before[started]
    missed = ran - (prom_scalar(counted) - before[counted])
    print(
        f"Flower paused: Redis cut it off after {cut_after:.1f}s; of {ran:.0f} tasks started, Flower missed "
        f"{missed:.0f}; CeleryEventsLost fired {check.fired_after:.0f}s after the load ended "
        f"({alert['annotations']['description']})"
    )
    assert missed > 0
    # The exporter was never paused or cut off: once it has caught up with its backlog (on a busy
    # machine it lags, which the alert's window can take for a loss while it lasts) it has counted
    # every task, and the alert does not name it.
    wait_for(
        lambda: prom_scalar(exporter) - before[exporter] >= ran,
        120,
        message=f"the exporter to count the {ran:.0f} tasks started",
    )
    wait_for(
        lambda: not prometheus_alerts("CeleryEventsLost", {"job": "celery_exporter"}),
        120,
        message="CeleryEventsLost not to name the exporter once it caught up",
    )
