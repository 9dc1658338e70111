"""The services native mode runs: how each starts and how we know it is healthy."""
import shutil
from dataclasses import dataclass, field
from typing import Callable, Optional

import requests

from native import broker as brokers, derive, paths

TIMEOUT = 2.0


@dataclass
class Service:
    name: str
    url: str                      # what the user opens (printed in the URLs table)
    health: str                   # URL that answers 200 when the service is ready
    argv: Callable[[dict], list]  # command line, given the environment
    note: str = ""
    available: Callable[[], Optional[str]] = field(default=lambda: None)  # reason it can't run, or None

    def healthy(self, auth=None):
        try:
            return requests.get(self.health, timeout=TIMEOUT, auth=auth).status_code == 200
        except requests.RequestException:
            return False


def _venv(tool):
    return str(paths.VENV_BIN / tool)


def worker(index):
    port = derive.worker_port(index)
    return Service(
        name=f"celery_worker-{index}",
        url=f"http://127.0.0.1:{port}/metrics",
        health=f"http://127.0.0.1:{port}/metrics",
        argv=lambda env: [_venv("celery"), "-A", "worker.celery_app", "worker", "--loglevel=INFO",
                          "-n", f"celery_worker-{index}@%h"],
        note="Celery worker; /metrics = CPU and memory of its process tree",
    )


def worker_env(index, env):
    return {**env, "WORKER_METRICS_PORT": str(derive.worker_port(index)), "WORKER_METRICS_ADDR": "127.0.0.1"}


def _grafana_binary():
    return shutil.which("grafana-server") or shutil.which("grafana")


def core(broker="rabbitmq"):
    """Every service but the workers, in start order (plus the broker's exporter for Redis)."""
    return [
        Service("prometheus", "http://localhost:9090", "http://127.0.0.1:9090/-/ready",
                lambda env: ["prometheus", f"--config.file={paths.GENERATED / 'prometheus.yml'}",
                             f"--storage.tsdb.path={paths.DATA / 'prometheus'}",
                             "--web.listen-address=127.0.0.1:9090", "--web.enable-lifecycle",
                             "--web.external-url=http://localhost:9090"],
                available=lambda: None if shutil.which("prometheus") else "prometheus is not installed (make deps)"),
        Service("alertmanager", "http://localhost:9093", "http://127.0.0.1:9093/-/ready",
                lambda env: ["prometheus-alertmanager", f"--config.file={paths.GENERATED / 'alertmanager.yml'}",
                             f"--storage.path={paths.DATA / 'alertmanager'}",
                             "--web.listen-address=127.0.0.1:9093", "--cluster.listen-address=",
                             "--web.external-url=http://localhost:9093"],
                available=lambda: None if shutil.which("prometheus-alertmanager") else "prometheus-alertmanager is not installed (make deps)"),
        Service("flower", "http://localhost:5555", "http://127.0.0.1:5555/healthcheck",
                lambda env: [_venv("celery"), "-A", "worker.celery_app", "flower", "--conf=worker/flowerconfig.py"]),
        Service("celery_exporter", "http://localhost:9808/metrics", "http://127.0.0.1:9808/health",
                lambda env: [str(paths.EXPORTER_VENV_BIN / "python"), "exporter/run_exporter.py",
                             f"--broker-url={env['BROKER_URL']}", "--host=127.0.0.1", "--port=9808",
                             "--retry-interval=5", "--queues=celery"]),
        Service("app", "http://localhost:8080", "http://127.0.0.1:8080/healthz",
                lambda env: [_venv("gunicorn"), "--config", "app/gunicorn_conf.py", "app.wsgi:app"],
                note="task submitter: form, JSON API, /metrics"),
        Service("grafana", "http://localhost:3000", "http://127.0.0.1:3000/api/health",
                lambda env: [_grafana_binary(), "server", "--homepath=/usr/share/grafana",
                             f"cfg:paths.provisioning={paths.GENERATED / 'grafana'}",
                             f"cfg:paths.data={paths.DATA / 'grafana'}", "cfg:server.http_addr=127.0.0.1"],
                available=lambda: None if _grafana_binary() else
                "no grafana-server binary here (no Debian package); dashboards are in grafana/provisioning/"),
    ] + ([redis_exporter()] if broker == "redis" else [])


def redis_exporter():
    port = brokers.REDIS_EXPORTER_PORT
    return Service("redis_exporter", f"http://localhost:{port}/metrics", f"http://127.0.0.1:{port}/metrics",
                   lambda env: brokers.redis_exporter_argv(env["BROKER_URL"]),
                   note="Redis broker: memory, clients, queue list and unacked lengths",
                   available=lambda: None if shutil.which("prometheus-redis-exporter") else
                   "prometheus-redis-exporter is not installed (make deps)")
