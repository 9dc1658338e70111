"""Two clusters, one global store: each cluster's Prometheus (its own `cluster` external label)
scrapes its celery-exporter and remote-writes into a global Prometheus (remote-write receiver on)
that evaluates the bundle's rules (fast profile) across clusters.

Each cluster is a small stack of real parts: a vhost of the shared RabbitMQ, one Celery worker,
the bundle's exporter launcher and a Prometheus. Failures on cluster b only: the success-rate alert
fires in the global store for cluster b and not for a, and the Overview's queries with the cluster
variable set to each cluster return that cluster's numbers.
"""

import shutil
import subprocess
import time
import urllib.parse

import pytest
import requests
import yaml
from celery import Celery

from mixin import profiles, rules
from mixin.config import Config
from native import broker as native_broker
from native import env as native_env
from native import paths
from tests.dashboard_queries import iter_panel_queries, load_dashboards

CFG = Config()
CLUSTERS = {"a": 29100, "b": 29200}  # port base per cluster: +8 exporter, +90 Prometheus
GLOBAL = 29390
RATE = 2  # tasks per second per cluster

needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus missing: run `make deps`")


def vhost_url(name):
    parts = native_env.broker_parts(native_env.build()["RMQ_URL"])
    q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    return f"amqp://{q(parts['user'])}:{q(parts['password'])}@{parts['host']}:{parts['port']}/{name}", parts["user"]


def ensure_vhost(name, user):
    native_broker.rabbitmqctl(["add_vhost", name], check=False)
    native_broker.rabbitmqctl(["set_permissions", "-p", name, user, ".*", ".*", ".*"])


def prometheus(tmp, name, port, config):
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [
        shutil.which("prometheus"),
        f"--config.file={path}",
        f"--storage.tsdb.path={tmp / name}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
    ]


def wait_until(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (requests.RequestException, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{message}: not within {timeout}s")


def query(port, expr):
    body = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture(scope="module")
def clusters(rabbitmq, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clusters")
    fast = profiles.apply("fast")
    rules.write(tmp / "rules" / "celery.rules.yml", fast, "the bundle's configuration, profile fast")
    procs, urls = [], {}
    logs = (tmp / "logs").open("w")

    def start(argv, env=None):
        procs.append(subprocess.Popen(argv, cwd=paths.REPO, env=env, stdout=logs, stderr=subprocess.STDOUT))

    start(
        prometheus(
            tmp,
            "global",
            GLOBAL,
            {
                "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
                "rule_files": [str(tmp / "rules" / "*.yml")],
            },
        )
    )
    for name, base in CLUSTERS.items():
        url, user = vhost_url(f"celery-cluster-{name}")
        ensure_vhost(f"celery-cluster-{name}", user)
        env = {**native_env.build(), "BROKER_URL": url, "RMQ_URL": url, "WORKER_METRICS": "0"}
        start(
            [
                str(paths.VENV_BIN / "celery"),
                "-A",
                "worker.celery_app",
                "worker",
                "-c",
                "2",
                "-Q",
                "celery",
                "-n",
                f"cluster-{name}@host-{name}",
                "--loglevel=WARNING",
            ],
            env,
        )
        start(
            [
                str(paths.EXPORTER_VENV_BIN / "python"),
                "exporter/run_exporter.py",
                f"--broker-url={url}",
                "--host=127.0.0.1",
                f"--port={base + 8}",
                "--queue-metrics-interval=5",
            ],
            env,
        )
        start(
            prometheus(
                tmp,
                f"cluster-{name}",
                base + 90,
                {
                    "global": {"scrape_interval": "5s", "external_labels": {"cluster": name}},
                    "scrape_configs": [
                        {"job_name": CFG.jobs.exporter, "static_configs": [{"targets": [f"127.0.0.1:{base + 8}"]}]}
                    ],
                    "remote_write": [
                        {
                            "url": f"http://127.0.0.1:{GLOBAL}/api/v1/write",
                            "queue_config": {"batch_send_deadline": "1s"},
                        }
                    ],
                },
            )
        )
        urls[name] = url
    try:
        wait_until(
            lambda: (
                {r["metric"].get("cluster") for r in query(GLOBAL, f'up{{job="{CFG.jobs.exporter}"}} == 1')}
                == set(CLUSTERS)
            ),
            90,
            "both clusters' exporters up in the global store",
        )
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        logs.close()
        for name in CLUSTERS:
            native_broker.rabbitmqctl(["delete_vhost", f"celery-cluster-{name}"], check=False)


def publish(url, count, fail):
    app = Celery(broker=url)
    for i in range(count):
        app.send_task("process_task", kwargs={"task_num": i, "timeout": 0, "fail": fail}, queue="celery")


@needs_prometheus
def test_failures_on_one_cluster_page_for_that_cluster_only(clusters):
    t0 = time.monotonic()
    deadline = t0 + 180
    fired = None
    while time.monotonic() < deadline and not fired:
        publish(clusters["a"], RATE, fail=False)
        publish(clusters["b"], RATE, fail=True)
        time.sleep(1)
        alerts = query(GLOBAL, 'ALERTS{alertname="CelerySuccessRateLow", alertstate="firing"}')
        fired = {r["metric"].get("cluster") for r in alerts}
    assert fired == {"b"}, f"CelerySuccessRateLow fired for clusters {fired} (expected b only)"
    # What the global store holds and how far behind the clusters it is (docs/multi-cluster.md).
    series = requests.get(f"http://127.0.0.1:{GLOBAL}/api/v1/status/tsdb", timeout=10).json()["data"]["headStats"][
        "numSeries"
    ]
    lag = query(GLOBAL, f'time() - max by (cluster) (timestamp(up{{job="{CFG.jobs.exporter}"}}))')
    lags = ", ".join(f"{r['metric'].get('cluster')} {float(r['value'][1]):.1f} s" for r in lag)
    print(
        f"global store: CelerySuccessRateLow firing for b {time.monotonic() - t0:.0f} s after its failures began; "
        f"{series} head series; newest sample of each cluster's exporter target: {lags} old"
    )
    # The Overview's queries, with the cluster variable set to each cluster, return its numbers.
    [overview] = [d for d in load_dashboards() if d["uid"] == CFG.dashboards.uids["overview"]]
    for name, expected in (("a", 1.0), ("b", 0.0)):
        variables = {"cluster": [name], "namespace": ".*"}
        [success] = [e for _, title, e in iter_panel_queries(overview, variables) if title == "Success rate"]
        [rate] = [e for _, title, e in iter_panel_queries(overview, variables) if title == "Tasks/s"]
        ratio = [float(r["value"][1]) for r in query(GLOBAL, success)]
        tasks_per_s = [float(r["value"][1]) for r in query(GLOBAL, rate)]
        print(f"cluster {name}: success rate {ratio}, tasks/s {tasks_per_s}")
        assert ratio == [expected], f"cluster {name}: success rate {ratio}"
        assert len(tasks_per_s) == 1 and tasks_per_s[0] > 0
