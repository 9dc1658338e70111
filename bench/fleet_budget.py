"""Section fleet, Prometheus's side: what the bench's Prometheus holds and how long its work takes for
N simulated workers, judged against the cardinality budget (docs/cardinality.md).

Per point: head series (total, and by the job that produced them; recording rules and ALERTS apart),
each job's slowest scrape over the run against its scrape timeout (Prometheus's own
scrape_duration_seconds), and each rule group's slowest evaluation over the run against its interval
(prometheus_rule_group_last_duration_seconds; /api/v1/rules gives the last one). At the largest
point, every query of the Overview dashboard (grafana/provisioning/dashboards/, the generated JSON)
runs against the bench's Prometheus over the run window as Grafana would send it: range queries
through /api/v1/query_range, instant ones (tables, "in range" stats) through /api/v1/query.

BENCH_FLEET_MIXIN=FILE (a mixin configuration, docs/mixin.md) measures the fleet with that
configuration's rules and Flower relabelling instead of the committed ones, e.g. `cardinality:
{flower_task_series: true}` with PER_TASK_FLOWER_METRICS=1 (Flower's own per-task series, kept and
aggregated by recording rules) against the bundle's defaults.
"""

import json
import math
import os
import re
import signal
import time

import requests
import yaml

from mixin import prometheus as mixin_prometheus, rules
from mixin.config import Config, load

GOALS = {
    "head_series_max": 100_000,
    "scrape_share_max": 0.5,  # of the job's scrape timeout
    "rule_share_max": 0.2,  # of the group's interval
    "events_lost_pct_max": 0.0,
}
DASHBOARDS = Config().dashboards
OVERVIEW_JSON = f"grafana/provisioning/dashboards/{DASHBOARDS.uids['overview']}.json"
SCRAPE_INTERVAL_S = 5.0  # the datasource's timeInterval (grafana/provisioning/datasources)
RULES_JOB = "recording rules"  # head series of recording rules (names with a colon), any job label
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


class Prometheus:
    """The bench's Prometheus API, by base URL."""

    def __init__(self, base):
        self.base = base

    def get(self, path, timeout=30, **params):
        body = requests.get(f"{self.base}{path}", params=params, timeout=timeout).json()
        if body.get("status") != "success":
            raise ValueError(f"{path} {params}: {body.get('error', body)}")
        return body["data"]

    def vector(self, expr):
        """{tuple of the result's label values, in label order: value} of an instant query."""
        result = self.get("/api/v1/query", query=expr)["result"]
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


def _label(key, name):
    return dict(key).get(name, "")


def head_series(prom):
    """Series in the head block now (total), and how many of those with a sample in the last 5
    minutes each job produced (raw series by their job; recording rules and ALERTS apart)."""
    total = prom.get("/api/v1/status/tsdb")["headStats"]["numSeries"]
    raw = prom.vector('count by (job) ({__name__=~"[^:]+", __name__!~"ALERTS|ALERTS_FOR_STATE"})')
    by_job = {_label(key, "job") or "(no job)": int(v) for key, v in raw.items()}
    by_job[RULES_JOB] = int(sum(prom.vector('count({__name__=~".+:.+"})').values()))
    by_job["ALERTS"] = int(sum(prom.vector('count({__name__=~"ALERTS|ALERTS_FOR_STATE"})').values()))
    return total, dict(sorted(by_job.items(), key=lambda kv: -kv[1]))


def _seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    return float(match.group(1)) * units[match.group(2)] if match else math.nan


def scrapes(prom, window_s):
    """{job: {max_s, p95_s, timeout_s, share}}: each job's slowest scrape over the window (the goal
    is judged on it), and the 95th percentile of its scrapes (what a one-off stall does not move)."""
    timeouts = {}
    for target in prom.get("/api/v1/targets", state="active")["activeTargets"]:
        job = target["labels"]["job"]
        timeouts[job] = _seconds(target.get("scrapeTimeout", "")) or timeouts.get(job)
    slowest = prom.vector(f"max by (job) (max_over_time(scrape_duration_seconds[{window_s}s]))")
    typical = _by(prom, f"max by (job) (quantile_over_time(0.95, scrape_duration_seconds[{window_s}s]))", "job")
    out = {}
    for key, value in slowest.items():
        job = _label(key, "job")
        timeout = timeouts.get(job, math.nan)
        share = value / timeout if timeout else None
        out[job] = {"max_s": value, "p95_s": typical.get(job), "timeout_s": timeout, "share": share}
    return dict(sorted(out.items()))


def _by(prom, expr, label):
    """{label's value: value} of an instant query."""
    return {_label(key, label).rpartition(";")[2]: v for key, v in prom.vector(expr).items()}


def rule_groups(prom, window_s):
    """{group: {last_s, max_s, p95_s, interval_s, share, rules, slowest_rules}}: each group's slowest
    evaluation over the window (the group's own metric; the goal is judged on it), the 95th
    percentile, its last one (the rules API) and its interval."""
    duration = f"prometheus_rule_group_last_duration_seconds[{window_s}s]"
    by_name = _by(prom, f"max by (rule_group) (max_over_time({duration}))", "rule_group")
    typical = _by(prom, f"max by (rule_group) (quantile_over_time(0.95, {duration}))", "rule_group")
    out = {}
    for group in prom.get("/api/v1/rules")["groups"]:
        last, interval = group.get("evaluationTime", 0.0), float(group["interval"])
        worst = max(by_name.get(group["name"], 0.0), last)
        slowest = sorted(group["rules"], key=lambda r: -r.get("evaluationTime", 0.0))[:3]
        out[group["name"]] = {
            "last_s": last,
            "max_s": worst,
            "p95_s": typical.get(group["name"]),
            "interval_s": interval,
            "share": worst / interval,
            "rules": len(group["rules"]),
            # The slowest rules of the last evaluation: where a group's time goes.
            "slowest_rules": {r.get("name", ""): r.get("evaluationTime", 0.0) for r in slowest},
        }
    return out


# --- Another mixin configuration ------------------------------------------------------------------

MIXIN_VARIABLE = "BENCH_FLEET_MIXIN"


def use_mixin_config(bench, state_dir, say):
    """With BENCH_FLEET_MIXIN set: the bench's Prometheus reloaded (SIGHUP) with that configuration's
    rules and Flower relabelling; returns the file's name, or None when unset."""
    path = os.environ.get(MIXIN_VARIABLE)
    if not path:
        return None
    cfg = load(path)
    rule_file = rules.write(state_dir / "fleet-rules" / "celery.rules.yml", cfg, source=path)
    config_path = state_dir / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    config["rule_files"] = [str(rule_file)]
    config_path.write_text(yaml.safe_dump(mixin_prometheus.with_cardinality(config, cfg), sort_keys=False))
    os.kill(bench.pid("prometheus"), signal.SIGHUP)
    prom = Prometheus(bench.prometheus_url(""))
    deadline = time.monotonic() + 30
    while str(rule_file) not in prom.get("/api/v1/status/config")["yaml"]:
        if time.monotonic() > deadline:
            raise ValueError(f"the bench Prometheus did not reload {config_path}")
        time.sleep(0.5)
    say(f"  Prometheus reloaded with the rules and Flower relabelling of {path}")
    return path


# --- The Overview dashboard's queries ----------------------------------------------------------------


def overview_queries(repo):
    """[(panel title, expr with Grafana's variables as an open dashboard has them, instant)]: each
    variable its "All" value or default; the built-ins are filled in per run (window)."""
    board = json.loads((repo / OVERVIEW_JSON).read_text())
    values = {}
    for variable in board["templating"]["list"]:
        if variable.get("includeAll"):
            values[variable["name"]] = variable.get("allValue") or ".*"
        elif variable.get("current", {}).get("value"):
            values[variable["name"]] = variable["current"]["value"]
    return [
        (panel["title"], _fill(t["expr"], values), bool(t.get("instant")))
        for panel in board["panels"]
        for t in panel["targets"]
    ]


def _fill(expr, values):
    return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), expr)


def grafana_builtins(window_s, step_s):
    """Grafana's interval variables for a panel over the window at this step."""
    rate_interval = max(step_s + SCRAPE_INTERVAL_S, 4 * SCRAPE_INTERVAL_S)
    return {
        "__rate_interval": f"{rate_interval:.0f}s",
        "__interval": f"{step_s:.0f}s",
        "__range": f"{window_s:.0f}s",
        "__range_s": f"{window_s:.0f}",
    }


def dashboard_query_times(prom, repo, start, end):
    """Every Overview query over [start, end] (Unix s): per panel its time and series returned; the
    slowest and the total."""
    window = max(60.0, end - start)
    step = max(SCRAPE_INTERVAL_S, math.ceil(window / 1000))  # Grafana: about one point per pixel
    builtins = grafana_builtins(window, step)
    panels = {}
    for title, expr, instant in overview_queries(repo):
        expr = _fill(expr, builtins)
        t = time.perf_counter()
        if instant:
            data = prom.get("/api/v1/query", timeout=60, query=expr, time=end)
        else:
            data = prom.get("/api/v1/query_range", timeout=60, query=expr, start=start, end=end, step=step)
        took = time.perf_counter() - t
        entry = panels.setdefault(title, {"seconds": 0.0, "series": 0})
        entry["seconds"] += took
        entry["series"] += len(data["result"])
    slowest = max(panels, key=lambda p: panels[p]["seconds"])
    return {
        "window_s": round(window),
        "step_s": step,
        "panels": panels,
        "panels_with_data": sum(1 for p in panels.values() if p["series"]),
        "total_s": sum(p["seconds"] for p in panels.values()),
        "slowest": {"panel": slowest, "seconds": panels[slowest]["seconds"]},
    }


# --- Goals ---------------------------------------------------------------------------------------


def goals(point):
    """[(what, measured, limit, met)] of one point against GOALS."""
    pr = point["prometheus"]
    out = [("head series", pr["head_series"], GOALS["head_series_max"], pr["head_series"] <= GOALS["head_series_max"])]
    for job, s in pr["scrapes"].items():
        share = s["share"] if s["share"] is not None else math.inf
        out.append(
            (
                f"scrape {job} (share of its timeout)",
                share,
                GOALS["scrape_share_max"],
                share <= GOALS["scrape_share_max"],
            )
        )
    for name, g in pr["rule_groups"].items():
        out.append(
            (
                f"rule group {name} (share of its interval)",
                g["share"],
                GOALS["rule_share_max"],
                g["share"] <= GOALS["rule_share_max"],
            )
        )
    for m in ("flower", "exporter"):
        lost = point[m]["events_lost_pct"]
        out.append(
            (f"events lost by {m} (%)", lost, GOALS["events_lost_pct_max"], lost <= GOALS["events_lost_pct_max"])
        )
    return out


def _shown(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def say_point(point, say):
    """The Prometheus side of one point, in a few lines."""
    pr = point["prometheus"]
    jobs = ", ".join(f"{job} {n:,}" for job, n in pr["head_series_by_job"].items())
    say(f"    head series {pr['head_series']:,}: {jobs}")
    worst = ", ".join(
        f"{job} {s['max_s']:.2f} (p95 {_p95(s)})/{s['timeout_s']:g} s" for job, s in pr["scrapes"].items()
    )
    say(f"    slowest scrape / timeout: {worst}")
    groups = ", ".join(
        f"{name} {g['max_s']:.3f} (p95 {_p95(g)})/{g['interval_s']:g} s" for name, g in pr["rule_groups"].items()
    )
    say(f"    slowest rule group evaluation / interval: {groups}")


def _p95(entry):
    return "-" if entry.get("p95_s") is None else f"{entry['p95_s']:.3f}"


def say_goals(points, say):
    """Goals met / not met at every point (each check printed for the largest point, and wherever it
    is not met); returns whether the largest point met them all."""
    failed = []
    for point in points:
        checks = goals(point)
        failed = [c for c in checks if not c[3]]
        verdict = "all goals met" if not failed else f"{len(failed)} of {len(checks)} goals NOT met"
        say(f"  fleet N={point['workers']}: {verdict}")
        for what, value, limit, met in checks:
            if not met or point is points[-1]:
                say(f"    {'met    ' if met else 'NOT met'} {what}: {_shown(value)} (goal <= {_shown(limit)})")
    dash = points[-1].get("dashboard")
    if dash:
        say(
            f"  Overview dashboard at N={points[-1]['workers']} over {dash['window_s']} s (step {dash['step_s']:g} s): "
            f"{len(dash['panels'])} panels, total {dash['total_s']:.2f} s, slowest {dash['slowest']['panel']!r} "
            f"{dash['slowest']['seconds']:.3f} s, {dash['panels_with_data']} with data (no real worker runs: "
            "panels of the workers' own metrics are empty here)"
        )
    return not failed
