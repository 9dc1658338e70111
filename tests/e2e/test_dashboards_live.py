"""Every query of every dashboard panel returns data from the live Prometheus after a mixed load.

Load: successes and failures, both task names, on the session's 3 workers. Panels that are empty
by design in a healthy system (firing alerts) are checked the other way round.
"""
import re

import pytest

from tests.dashboard_queries import (dashboard_variables, empty_by_design, iter_panel_queries,
                                     load_dashboards, substitute)
from tests.live import prom_query, submit, wait_finished, wait_for

pytestmark = pytest.mark.stack

# The session's stack runs RabbitMQ: the Redis broker's dashboard is checked by tests/redis.
DASHBOARDS = [d for d in load_dashboards() if "redis" not in d["tags"]]
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


@pytest.fixture(scope="module")
def mixed_load(stack):
    ids = submit(task="process_task", count=12, timeout=0.3, fail_rate=0.25)
    ids += submit(task="process_data", count=6, timeout=0.2)
    wait_finished(ids, 120)
    # Both exporters' counters for both tasks, and a runtime histogram, have reached Prometheus.
    wait_for(lambda: len(prom_query('sum by (name) (celery_task_succeeded_total)')) >= 2
             and prom_query('sum(celery_task_failed_total{exception!=""}) > 0')
             and prom_query("sum by (task) (flower_task_runtime_seconds_count)")
             # rate() needs two samples of the series the load created (one exporter scrape every 5 s)
             and prom_query("sum(rate(celery_task_runtime_bucket[2m]))")
             and prom_query("sum(rate(celery_task_failed_total[2m]))"), 90,
             message="the load to show up in Prometheus")
    # A worker that ran some of this load (Flower has per-worker series only for those).
    worker = prom_query('topk(1, sum by (worker) (increase(flower_events_total{type="task-succeeded"}[2m])))'
                        )[0]["metric"]["worker"]
    return {"queue": "celery", "task": "process_task", "worker": worker, "__rate_interval": "2m"}


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_every_panel_query_returns_data(mixed_load, dashboard):
    empty = empty_by_design(dashboard)
    missing = []
    for _, panel, expr in iter_panel_queries(dashboard, mixed_load):
        result = prom_query(expr)  # fails on a query Prometheus does not accept
        if panel in empty:
            continue
        if not result:
            missing.append(f"{panel}: {expr}")
    assert not missing, "panels without data:\n" + "\n".join(missing)


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_every_template_variable_has_values(mixed_load, dashboard):
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = LABEL_VALUES.match(substitute(query.strip(), dashboard_variables(dashboard, mixed_load)))
        assert match, f"unexpected variable query {query!r}"
        selector, label = match.groups()
        values = {r["metric"].get(label) for r in prom_query(f"count by ({label}) ({selector})")}
        assert values - {None}, f"${variable['name']} would have no values: {query}"


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
