"""Every query of every dashboard panel returns data from a live Prometheus after a mixed load, and
the panels tell deployments apart.

Load: successes and failures of both task names on the session's 3 workers, plus, on a probe
worker (tests/probe.py), retries, a rejection and revocations (of a running and of a waiting task).

Two deployments: a second Prometheus (port 19095, its own config and storage) scrapes the same
targets twice, as cluster "eu-1"/namespace "celery-a" and as cluster "us-2"/namespace "celery-b"
(relabelled target labels; job names unchanged). Every panel query runs there with a non-empty
`cluster`, returns data and only that cluster's series; with cluster = All it returns both.
Panels that are empty by design in a healthy system (firing alerts) are checked the other way round.
"""

import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml
from kombu import Queue

from native import paths
from tests.dashboard_queries import (
    dashboard_variables,
    empty_by_design,
    iter_panel_queries,
    load_dashboards,
    substitute,
)
from tests.live import PROMETHEUS, prom_query, submit, task_state, wait_finished, wait_for
from tests.probe import ProbeWorker
from worker.celery_app import app

pytestmark = pytest.mark.stack

# The session's stack runs RabbitMQ: the Redis broker's dashboard is checked by tests/redis.
DASHBOARDS = [d for d in load_dashboards() if "redis" not in d["tags"]]
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")
SECOND = "http://127.0.0.1:19095"
DEPLOYMENTS = {"eu-1": "celery-a", "us-2": "celery-b"}  # cluster -> namespace
SCRAPE = 7  # seconds: longer than the scrape interval (5 s)
# A queue nobody consumes, holding one task while the panels are checked: the Latency dashboard's
# oldest waiting message (RabbitMQ's head message timestamp) needs a message that waits.
WAITING_QUEUE = "dashboards-waiting"


def query(base, expr):
    body = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body.get("status") == "success", f"query failed on {base}: {expr}: {body}"
    return body["data"]["result"]


def second_prometheus_config():
    """The stack's scrape jobs, each twice with the deployment's labels, and its rules (panels read
    recording rules: per deployment here); no alerting."""
    stack = yaml.safe_load((paths.GENERATED / "prometheus.yml").read_text())
    jobs = []
    for job in stack["scrape_configs"]:
        for cluster, namespace in DEPLOYMENTS.items():
            copy = dict(job, job_name=f"{job['job_name']}-{cluster}")
            copy["relabel_configs"] = [
                {"target_label": "job", "replacement": job["job_name"]},
                {"target_label": "cluster", "replacement": cluster},
                {"target_label": "namespace", "replacement": namespace},
            ]
            jobs.append(copy)
    return {"global": stack["global"], "rule_files": stack["rule_files"], "scrape_configs": jobs}


@pytest.fixture(scope="module")
def second_prometheus(stack):
    if not shutil.which("prometheus"):
        pytest.skip("prometheus is not installed (make deps)")
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-19095-"))
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(second_prometheus_config(), sort_keys=False))
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            "--web.listen-address=127.0.0.1:19095",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("w"),
    )
    try:

        def both_scraped():
            try:
                return query(SECOND, 'count(up{job="celery_exporter"} == 1) == 2')
            except requests.ConnectionError:
                return None  # not listening yet

        wait_for(both_scraped, 60, 1, message="the second Prometheus to scrape both deployments")
        yield SECOND
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def mixed_load(stack, second_prometheus):
    with ProbeWorker() as probe:
        time.sleep(SCRAPE)  # both Prometheus servers saw the counters before the load (increase from 0)
        ids = submit(task="process_task", count=12, timeout=0.3, fail_rate=0.25)
        ids += submit(task="process_data", count=6, timeout=0.2)
        # The probe worker, in two waves a scrape apart: a counter's first sample is its first
        # value, so rate()/increase() need the second wave to see retries and rejections.
        for wave in (1, 2):
            retried = [probe.send("probe_retry", retries=2) for _ in range(2)]
            rejected = probe.send("probe_reject")
            wait_finished(retried, 60)
            wait_for(lambda: task_state(rejected)["state"] == "FAILURE", 60, message="the rejection")
            if wave == 1:
                time.sleep(SCRAPE)
        # A long task holds the probe's only slot, another waits behind it; both are revoked.
        running = probe.send("process_task", task_num=100, timeout=60)
        waiting = probe.send("process_task", task_num=101, timeout=1)
        wait_for(lambda: task_state(running)["state"] == "STARTED", 60, message="the long task to start")
        time.sleep(SCRAPE)  # the revoked counter is scraped at 0 first (the exporter adds it at 0)
        app.control.revoke(waiting)  # revoked while waiting at the worker
        app.control.revoke(running, terminate=True)  # revoked while running
        wait_finished(ids, 120)
        wait_for(
            lambda: all(task_state(i)["state"] == "REVOKED" for i in (running, waiting)), 60, message="both revocations"
        )
        signs = [
            "sum by (name) (celery_task_succeeded_total)",
            'sum(celery_task_failed_total{exception!=""}) > 0',
            'sum by (worker) (flower_events_total{type="task-succeeded"})',  # Flower counts per worker
            # rate() needs two samples of the series the load created (a scrape every 5 s)
            "sum(rate(celery_task_runtime_bucket[2m])) > 0",
            "sum(rate(celery_task_failed_total[2m])) > 0",
            "sum(increase(celery_task_retried_total[2m])) > 0",
            "sum(increase(celery_task_revoked_total[2m])) > 0",
            "sum(increase(celery_task_rejected_total[2m])) > 0",
            'sum(rate(flower_events_total{type="task-retried"}[2m])) > 0',
        ]
        for base in (PROMETHEUS, second_prometheus):
            try:
                wait_for(lambda: all(query(base, s) for s in signs), 90, 1, message=f"the load to show up in {base}")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; no data: {[s for s in signs if not query(base, s)]}") from None
        # A stack worker that ran some of this load (Flower has per-worker series only for those)
        # and the probe worker (retries): the $worker variable with two values.
        worker = prom_query(
            'topk(1, sum by (worker) (increase(flower_events_total{type="task-succeeded", '
            'worker=~"celery_worker-.*"}[2m])))'
        )[0]["metric"]["worker"]
        with waiting_message({PROMETHEUS: 1, second_prometheus: len(DEPLOYMENTS)}):
            yield {
                "queue": ["celery", WAITING_QUEUE],
                "task": "process_task",
                "worker": [worker, probe.nodename],
                "__rate_interval": "5m",
            }


@contextlib.contextmanager
def waiting_message(scrapers):
    """One task waits in a queue nobody consumes, until each Prometheus in scrapers (base URL ->
    copies of the series expected) has scraped it."""
    with app.connection_for_write() as conn:
        Queue(WAITING_QUEUE, routing_key=WAITING_QUEUE)(conn.default_channel).declare()
        app.send_task("process_task", kwargs={"task_num": 1, "timeout": 0}, queue=WAITING_QUEUE)
        # Every deployment's copy: the second Prometheus scrapes RabbitMQ once per cluster.
        head = f'rabbitmq_detailed_queue_head_message_timestamp{{queue="{WAITING_QUEUE}"}} > 0'
        try:
            for base, copies in scrapers.items():
                wait_for(
                    lambda base=base, copies=copies: query(base, f"count({head}) >= {copies}"),
                    30,
                    1,
                    message=f"{base} to scrape the waiting message of {WAITING_QUEUE} {copies} time(s)",
                )
            yield
        finally:
            conn.default_channel.queue_delete(WAITING_QUEUE)


def results_by_panel(base, dashboard, variables):
    empty = empty_by_design(dashboard)
    for _, panel, expr in iter_panel_queries(dashboard, variables):
        yield panel, expr, query(base, expr), panel in empty  # fails on a query Prometheus rejects


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_every_panel_query_returns_data(mixed_load, dashboard):
    missing = [
        f"{panel}: {expr}"
        for panel, expr, result, empty in results_by_panel(PROMETHEUS, dashboard, mixed_load)
        if not empty and not result
    ]
    assert not missing, "panels without data:\n" + "\n".join(missing)


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_a_chosen_cluster_shows_only_its_own_data(mixed_load, second_prometheus, dashboard):
    for cluster, namespace in DEPLOYMENTS.items():
        variables = {**mixed_load, "cluster": cluster, "namespace": namespace}
        missing, foreign = [], []
        for panel, expr, result, empty in results_by_panel(second_prometheus, dashboard, variables):
            if empty:
                continue
            if not result:
                missing.append(f"{panel}: {expr}")
            # Series without the label: only the `or vector(0)` fallback of a count.
            others = {r["metric"].get("cluster") for r in result} - {cluster}
            if others - ({None} if "vector(0)" in expr else set()):
                foreign.append(f"{panel}: {others}")
        assert not missing, f"cluster {cluster}: panels without data:\n" + "\n".join(missing)
        assert not foreign, f"cluster {cluster}: other deployments' series:\n" + "\n".join(foreign)


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_all_clusters_are_kept_apart(mixed_load, second_prometheus, dashboard):
    """With cluster = All, aggregations keep one series per deployment: they never add up."""
    merged = []
    for panel, expr, result, empty in results_by_panel(second_prometheus, dashboard, mixed_load):
        if empty or not result:
            continue
        clusters = {r["metric"].get("cluster") for r in result} - {None}
        if expr.startswith("count(ALERTS") or (not clusters and "vector(0)" in expr):
            continue  # one number for the selected scope, or a count's 0 fallback
        if clusters != set(DEPLOYMENTS):
            merged.append(f"{panel}: {clusters}: {expr}")
    assert not merged, "panels that do not separate the deployments:\n" + "\n".join(merged)


def test_same_numbers_for_both_deployments_and_the_stack(mixed_load, second_prometheus):
    """Both copies of the same targets give the same count of workers as the stack's Prometheus."""
    expr = 'count by (cluster) (celery_worker_up{job="celery_exporter"} == 1)'
    per_cluster = {r["metric"]["cluster"]: float(r["value"][1]) for r in query(second_prometheus, expr)}
    stack = float(prom_query('count(celery_worker_up{job="celery_exporter"} == 1)')[0]["value"][1])
    assert per_cluster == {cluster: stack for cluster in DEPLOYMENTS}
    assert stack >= 4  # the 3 stack workers and the probe, each with its own host part


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_every_template_variable_has_values(mixed_load, second_prometheus, dashboard):
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query_text = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        for base, variables in ((PROMETHEUS, mixed_load), (second_prometheus, {**mixed_load, "cluster": "eu-1"})):
            match = LABEL_VALUES.match(substitute(query_text.strip(), dashboard_variables(dashboard, variables)))
            assert match, f"unexpected variable query {query_text!r}"
            selector, label = match.groups()
            values = {r["metric"].get(label) for r in query(base, f"count by ({label}) ({selector})")} - {None}
            if variable["name"] in ("cluster", "namespace") and base == PROMETHEUS:
                assert not values  # no such labels natively: "All" matches the series without them
                continue
            assert values, f"${variable['name']} would have no values on {base}: {query_text}"
            if variable["name"] == "cluster":
                assert values == set(DEPLOYMENTS)
            if variable["name"] == "namespace":
                assert values == {"celery-a"}  # within the chosen cluster
            if variable["name"] == "job_redis_broker":
                continue  # the overview reads either broker; this stack's is RabbitMQ (tests/redis: Redis)
            if variable["name"].startswith("job_"):
                assert variable["current"]["value"] in values


def test_empty_by_design_panels_show_exactly_the_firing_alerts(mixed_load):
    # The Watchdog (severity none) always fires and is not shown; any other firing alert is.
    firing = {r["metric"]["alertname"] for r in prom_query('ALERTS{alertstate="firing", severity!="none"}')}
    checked = 0
    for dashboard in DASHBOARDS:
        empty = empty_by_design(dashboard)
        for _, panel, expr in iter_panel_queries(dashboard, mixed_load):
            if panel in empty:
                shown = {r["metric"].get("alertname") for r in prom_query(expr)}
                assert shown == firing, f"{panel} shows {shown}, firing: {firing}"
                checked += 1
    assert checked >= 1
