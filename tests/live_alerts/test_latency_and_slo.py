"""Task latency by stage and the SLOs, live on the native stack (fast profile):

- `make loadtest SCENARIO=backlog` (shortened) makes the queue wait rise on the dashboards' own
  queries and CeleryQueueWaitHigh fire; the workers' per-stage sums (queue wait + runtime) agree
  with what the load generator measured from submit to finish, within 10 %;
- sustained failures page through the fast-burn alert when the recorded windows say they should,
  and it resolves when the short window says so.
"""

import json
import subprocess
import sys
import time
from datetime import datetime

import pytest
import requests

from mixin import profiles
from mixin.durations import seconds
from native import paths
from tests.alerting import AlertCheck
from tests.dashboard_queries import iter_panel_queries, load_dashboards
from tests.live import PROMETHEUS, SteadyLoad, prom_scalar, settled

pytestmark = pytest.mark.stack
CFG = profiles.apply("fast")
TASK = 'task=~".*process_task"'


def stage_totals():
    """(queue wait seconds, runtime seconds, tasks started) the workers measured for process_task."""
    exprs = [
        f"sum(celery_worker_task_queue_wait_seconds_sum{{{TASK}}})",
        f"sum(celery_worker_task_runtime_seconds_sum{{{TASK}}})",
        f"sum(celery_worker_task_runtime_seconds_count{{{TASK}}})",
    ]
    values = settled(*exprs)
    return [values[e] for e in exprs]


def overview_queue_wait_query():
    [board] = [d for d in load_dashboards() if d["uid"] == CFG.dashboards.uids["overview"]]
    [expr] = [e for _, title, e in iter_panel_queries(board) if title == "Queue wait p95 per queue"]
    return expr


@pytest.mark.heavy
def test_backlog_raises_the_queue_wait_fires_its_alert_and_the_stages_add_up(stack, tmp_path):
    before = stage_totals()
    check = AlertCheck("CeleryQueueWaitHigh", queue="celery")
    out = tmp_path / "backlog.json"
    # The backlog scenario, shorter: 4 tasks/s of 6 s for 45 s on 6 pool processes.
    load = subprocess.Popen(
        [sys.executable, "-m", "loadtest", "backlog", "--duration", "45", "--json", str(out)],
        cwd=paths.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        check.fire(timeout=240)
        limit = CFG.thresholds.queue_wait_p95_max_seconds
        waited = prom_scalar(f"max({overview_queue_wait_query()})")
        print(f"CeleryQueueWaitHigh fired; the Overview's queue-wait p95 is {waited:.0f}s")
        assert waited > limit, f"the dashboard shows {waited:.0f}s, not above {limit:g}s"
        output, _ = load.communicate(timeout=600)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, output[-3000:]
    summary = json.loads(out.read_text())
    after = stage_totals()
    waits, runs, started = (a - b for a, b in zip(after, before, strict=True))
    end_to_end = summary["latency_seconds"]["sum"]
    print(
        f"{summary['succeeded']} tasks: stages {waits:.0f}s waiting + {runs:.0f}s running = {waits + runs:.0f}s; "
        f"submit to finish {end_to_end:.0f}s"
    )
    assert started == summary["succeeded"] == summary["planned"]
    assert abs((waits + runs) - end_to_end) <= 0.10 * end_to_end
    check.resolve()


def first_time_above(exprs, threshold, start, end):
    """The first evaluation time at which every expr was above threshold (None if never)."""
    times = None
    for expr in exprs:
        r = requests.get(
            f"{PROMETHEUS}/api/v1/query_range",
            timeout=10,
            params={"query": f"{expr} > {threshold}", "start": start, "end": end, "step": 1},
        ).json()
        above = {float(t) for series in r["data"]["result"] for t, _ in series["values"]}
        times = above if times is None else times & above
    return min(times) if times else None


def active_since(alertname, labels):
    alerts = requests.get(f"{PROMETHEUS}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    found = [
        a
        for a in alerts
        if a["labels"]["alertname"] == alertname and all(a["labels"].get(k) == v for k, v in labels.items())
    ]
    return datetime.fromisoformat(found[0]["activeAt"].replace("Z", "+00:00")).timestamp() if found else None


def test_sustained_failures_page_through_the_fast_burn_alert_when_the_windows_say_so(stack):
    page = next(row for row in CFG.slos.alerts if row.severity == "critical")
    labels = {"slo": "all-tasks", "sli": "success", "long_window": page.long}
    threshold = round(page.factor * (1 - CFG.slos.objectives[0].success_ratio), 10)
    windows = [f'celery:slo_errors:ratio_rate{w}{{slo="all-tasks", sli="success"}}' for w in (page.long, page.short)]
    check = AlertCheck("CeleryErrorBudgetBurn", **labels)
    long_window = seconds(CFG.slos.windows[page.long])
    # The long window averages the short window's error ratio, one sample per evaluation: at worst
    # it is full of error-free samples, and failures must fill threshold / (1 - threshold) of it.
    bound = threshold / (1 - threshold) * long_window
    rate = 10
    t0 = time.time()
    with SteadyLoad(rate, task="process_task", timeout=0, fail_rate=1.0):
        check.fire(timeout=bound + 120)
        fired_at = active_since("CeleryErrorBudgetBurn", labels)
    predicted = first_time_above(windows, threshold, t0 - 60, time.time())
    print(
        f"fast burn fired {fired_at - t0:.0f}s after the failures began; both windows above "
        f"{threshold:g} from {predicted - t0:.0f}s"
    )
    # The alert turns active at its first evaluation after both recorded windows crossed.
    assert predicted is not None and -1 <= fired_at - predicted <= 2 * 5 + 1
    stopped = time.time()
    check.resolve()
    # It resolved because the short window no longer burns (under the threshold, or no task at all).
    assert prom_scalar(f"{windows[1]} > {threshold}", default=0) == 0
    print(
        f"resolved {time.time() - stopped:.0f}s after the failures stopped (short window {CFG.slos.windows[page.short]})"
    )
