"""Flower's options from the guide, on a second Flower beside the stack's: basic auth, persistence,
purging offline workers from /metrics; and the stack Flower's Broker page against RabbitMQ."""

import os
import signal
import subprocess
import time

import pytest
import requests

from native import env as native_env
from native import paths
from tests.live import FLOWER, submit, wait_finished, wait_for

pytestmark = pytest.mark.stack

PORT = 15555
URL = f"http://127.0.0.1:{PORT}"
AUTH = ("admin", "s3cret")
CELERY = str(paths.VENV_BIN / "celery")


def start_flower(db):
    env = {
        **native_env.build(),
        "FLOWER_PORT": str(PORT),
        "FLOWER_BASIC_AUTH": "admin:s3cret",
        "FLOWER_PERSISTENT": "true",
        "FLOWER_DB": str(db),
        "FLOWER_PURGE_OFFLINE_WORKERS": "5",
    }
    env.pop("FLOWER_UNAUTHENTICATED_API", None)
    proc = subprocess.Popen(
        [CELERY, "-A", "worker.celery_app", "flower", "--conf=worker/flowerconfig.py"],
        env=env,
        cwd=paths.REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _get("/healthcheck").status_code == 200, 30, message="the second Flower")
    return proc


def stop_flower(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


@pytest.fixture
def flower_with_auth(stack, tmp_path):
    proc = start_flower(tmp_path / "flower.db")
    yield proc
    stop_flower(proc)


def _get(path, auth=None):
    try:
        return requests.get(URL + path, auth=auth, timeout=5)
    except requests.ConnectionError:
        return requests.Response()


def test_basic_auth_is_honoured_and_metrics_stay_scrapable(flower_with_auth):
    assert _get("/api/workers").status_code == 401
    assert _get("/", auth=("admin", "wrong")).status_code == 401
    assert _get("/api/workers", auth=AUTH).status_code == 200
    # Prometheus scrapes /metrics without credentials (Flower exempts it).
    assert _get("/metrics").status_code == 200


def test_persistent_flower_remembers_tasks_across_a_restart(flower_with_auth, tmp_path):
    [task_id] = submit(task="process_task", count=1, timeout=0)
    wait_finished([task_id], 60)
    info = lambda: _get(f"/api/task/info/{task_id}", auth=AUTH)  # noqa: E731
    wait_for(
        lambda: info().status_code == 200 and info().json().get("state") == "SUCCESS",
        30,
        message="the second Flower to see the task",
    )
    stop_flower(flower_with_auth)  # saves its state to FLOWER_DB at shutdown
    restarted = start_flower(tmp_path / "flower.db")
    try:
        # No new event mentions this task: only the restored state can know it.
        assert info().status_code == 200 and info().json()["state"] == "SUCCESS"
    finally:
        stop_flower(restarted)


def test_a_killed_worker_is_purged_from_flowers_metrics(flower_with_auth):
    env = {**native_env.build(), "WORKER_METRICS": "0"}
    name = f"purge-probe-{os.getpid()}@%h"
    worker = subprocess.Popen(
        [CELERY, "-A", "worker.celery_app", "worker", "-n", name, "-c", "1", "--loglevel=WARNING"],
        env=env,
        cwd=paths.REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = f'flower_worker_online{{worker="purge-probe-{os.getpid()}@'
    try:
        wait_for(lambda: probe in _get("/metrics").text, 60, message="the probe worker online in Flower")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # no worker-offline event: only silence
        worker.wait(10)
    t0 = time.monotonic()
    wait_for(lambda: probe not in _get("/metrics").text, 60, interval=1, message="the dead worker purged")
    print(f"dead worker purged from Flower's /metrics {time.monotonic() - t0:.1f}s after SIGKILL")


def test_broker_page_reads_rabbitmq_management_api(stack):
    page = requests.get(f"{FLOWER}/broker", timeout=10)
    assert page.status_code == 200 and "celery" in page.text
    lengths = requests.get(f"{FLOWER}/api/queues/length", timeout=10).json()
    assert any(q["name"] == "celery" for q in lengths["active_queues"])
