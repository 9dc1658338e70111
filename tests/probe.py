"""A Celery worker the test starts next to the stack's: one pool slot, a larger prefetch, its own
queue, and the probe tasks (tests/probe_tasks.py) besides the stack's.

With one slot and prefetch, a long task holds the slot while the tasks behind it are already
received by the worker and wait there (Flower's prefetch time), which the broker's queue depth does
not show.
"""

import os
import signal
import socket
import subprocess

from native import env as native_env, paths
from tests.live import prom_query, wait_for
from worker.celery_app import app

CELERY = str(paths.VENV_BIN / "celery")
QUEUE = "probe"


class ProbeWorker:
    def __init__(self, prefetch_multiplier=16):
        self.prefetch_multiplier = prefetch_multiplier
        self.nodename = f"probe-{os.getpid()}@{socket.gethostname()}-probe"
        self.process = None

    def __enter__(self):
        env = {**native_env.build(), "WORKER_METRICS": "0"}
        self.process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "worker.celery_app",
                "worker",
                "-n",
                self.nodename,
                "-c",
                "1",
                f"--prefetch-multiplier={self.prefetch_multiplier}",
                "-Q",
                QUEUE,
                "-I",
                "tests.probe_tasks",
                "--loglevel=WARNING",
            ],
            env=env,
            cwd=paths.REPO,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: prom_query(f'flower_worker_online{{worker="{self.nodename}"}} == 1'),
            60,
            message="the probe worker online in Flower",
        )
        return self

    def __exit__(self, *exc):
        os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown: worker-offline event
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(QUEUE)

    def send(self, name, **kwargs):
        return app.send_task(name, kwargs=kwargs, queue=QUEUE).id
