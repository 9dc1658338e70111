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
from tests.live import prom_scalar, wait_for
from tests.redis.conftest import redis_broker_url

pytestmark = pytest.mark.stack

# Low enough that the paused Flower passes it within seconds, high enough (a few seconds of events)
# that the exporter, reading all along on a machine busy with other tests, stays under it.
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
    before = {q: prom_scalar(q) for q in (started, counted)}

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
    # The exporter was never paused: it counted every task, and the alert does not name it.
    assert not prometheus_alerts("CeleryEventsLost", {"job": "celery_exporter"})
