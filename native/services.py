"""The services native mode runs: how each starts and how we know it is healthy."""

import shutil
from dataclasses import dataclass, field
from typing import Callable, Optional

import requests

from native import broker as brokers, derive, env as envmod, paths
from native.ports import PORTS

TIMEOUT = 2.0
WORKER_PREFIX = "celery_worker-"


@dataclass
class Service:
    name: str
    url: str  # what the user opens (printed in the URLs table)
    health: str  # URL that answers 200 when the service is ready
    argv: Callable[[dict], list]  # command line, given the environment
    note: str = ""
    available: Callable[[], Optional[str]] = field(default=lambda: None)  # reason it can't run, or None
    environment: Callable[[dict], dict] = field(default=lambda env: env)  # the environment it runs with
    auth: Callable[[dict], Optional[tuple]] = field(default=lambda env: None)  # credentials of `health`
    early: bool = False  # started (and healthy) before the others

    def healthy(self, env):
        try:
            return requests.get(self.health, timeout=TIMEOUT, auth=self.auth(env)).status_code == 200
        except requests.RequestException:
            return False


def worker_index(name):
    """The index of the worker service `name`, or None for any other service."""
    return int(name[len(WORKER_PREFIX) :]) if name.startswith(WORKER_PREFIX) else None


def _venv(tool):
    return str(paths.VENV_BIN / tool)


def worker_nodename(index):
    """celery_worker-<i>@<host>-<i>: the host part differs per worker, because celery-exporter keeps
    only the part after `@` (its `hostname` label) and would otherwise merge all native workers."""
    return f"celery_worker-{index}@%h-{index}"


def worker(index):
    port = derive.worker_port(index)
    return Service(
        name=f"{WORKER_PREFIX}{index}",
        url=f"http://127.0.0.1:{port}/metrics",
        health=f"http://127.0.0.1:{port}/metrics",
        argv=lambda env: [
            _venv("celery"),
            "-A",
            "worker.celery_app",
            "worker",
            "--loglevel=INFO",
            "-n",
            worker_nodename(index),
        ],
        note="Celery worker; /metrics = CPU and memory of its process tree",
        environment=lambda env: worker_env(index, env),
        early=True,  # Flower's first inspect then finds the workers (`curl /api/workers`)
    )


def worker_env(index, env):
    return {**env, "WORKER_METRICS_PORT": str(derive.worker_port(index)), "WORKER_METRICS_ADDR": "127.0.0.1"}


def _grafana_binary():
    return shutil.which("grafana-server") or shutil.which("grafana")


def _prometheus_server(name, binary, port, storage_flag, extra_flag):
    """Prometheus or Alertmanager: its generated config, its data directory, its port."""
    return Service(
        name,
        f"http://localhost:{port}",
        f"http://127.0.0.1:{port}/-/ready",
        lambda env: [
            binary,
            f"--config.file={paths.GENERATED / f'{name}.yml'}",
            f"{storage_flag}={paths.DATA / name}",
            f"--web.listen-address=127.0.0.1:{port}",
            extra_flag,
            f"--web.external-url=http://localhost:{port}",
        ],
        available=lambda: None if shutil.which(binary) else f"{binary} is not installed (make deps)",
        early=True,
    )


def _url(service, path="", host="localhost"):
    """The service's URL natively: `localhost` is what the user opens, 127.0.0.1 what we check."""
    return f"http://{host}:{PORTS[service]}{path}"


def core(broker="rabbitmq"):
    """Every service but the workers, in start order (plus the broker's exporter for Redis)."""
    return [
        _prometheus_server(
            "prometheus", "prometheus", PORTS["prometheus"], "--storage.tsdb.path", "--web.enable-lifecycle"
        ),
        _prometheus_server(
            "alertmanager",
            "prometheus-alertmanager",
            PORTS["alertmanager"],
            "--storage.path",
            "--cluster.listen-address=",
        ),
        Service(
            "flower",
            _url("flower"),
            _url("flower", "/healthcheck", "127.0.0.1"),
            lambda env: [_venv("celery"), "-A", "worker.celery_app", "flower", "--conf=worker/flowerconfig.py"],
            auth=envmod.flower_auth,
        ),
        Service(
            "celery_exporter",
            _url("celery_exporter", "/metrics"),
            _url("celery_exporter", "/health", "127.0.0.1"),
            lambda env: [
                str(paths.EXPORTER_VENV_BIN / "python"),
                "exporter/run_exporter.py",
                f"--broker-url={env['BROKER_URL']}",
                "--host=127.0.0.1",
                f"--port={PORTS['celery_exporter']}",
                "--retry-interval=5",
                "--queues=celery",
            ],
        ),
        Service(
            "app",
            _url("app"),
            _url("app", "/healthz", "127.0.0.1"),
            lambda env: [_venv("gunicorn"), "--config", "app/gunicorn_conf.py", "app.wsgi:app"],
            note="task submitter: form, JSON API, /metrics",
        ),
        Service(
            "grafana",
            _url("grafana"),
            _url("grafana", "/api/health", "127.0.0.1"),
            lambda env: [
                _grafana_binary(),
                "server",
                "--homepath=/usr/share/grafana",
                f"cfg:paths.provisioning={paths.GENERATED / 'grafana'}",
                f"cfg:paths.data={paths.DATA / 'grafana'}",
                "cfg:server.http_addr=127.0.0.1",
                f"cfg:server.http_port={PORTS['grafana']}",
            ],
            available=lambda: (
                None
                if _grafana_binary()
                else "no grafana-server binary here (no Debian package); dashboards are in grafana/provisioning/"
            ),
        ),
    ] + ([redis_exporter()] if broker == "redis" else [])


def redis_exporter():
    port = brokers.REDIS_EXPORTER_PORT
    return Service(
        "redis_exporter",
        f"http://localhost:{port}/metrics",
        f"http://127.0.0.1:{port}/metrics",
        lambda env: brokers.redis_exporter_argv(env["BROKER_URL"]),
        note="Redis broker: memory, clients, queue list and unacked lengths",
        available=lambda: (
            None
            if shutil.which("prometheus-redis-exporter")
            else "prometheus-redis-exporter is not installed (make deps)"
        ),
    )
