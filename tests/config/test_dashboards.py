"""Static checks of the provisioned Grafana dashboards and their provisioning files."""

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mixin.config import Config
from mixin.dashboards import build_all, builder, generate, overview, views
from mixin.queries import selectors
from native.ports import PORTS
from tests.grafana_schema import problems
from tests.dashboard_queries import (
    DASHBOARD_DIR,
    empty_by_design,
    iter_panel_queries,
    load_dashboards,
    panels,
)

CFG = Config()
BOARD = builder.Board(CFG)

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "grafana" / "provisioning"
MODERN_PANELS = {"timeseries", "stat", "gauge", "bargauge", "table", "heatmap"}
DASHBOARDS = load_dashboards()
ALL_PANELS = [(d["uid"], p) for d in DASHBOARDS for p in panels(d)]
PANEL_IDS = [f"{uid}:{p['title']}" for uid, p in ALL_PANELS]
# Every dashboard: datasource, cluster, namespace, then one job variable per source it queries.
COMMON_VARIABLES = ["datasource", "cluster", "namespace"]
VARIABLES = {
    "celery-overview": {"queue", "job_exporter", "job_flower", "job_worker", "job_rabbitmq_queues", "job_redis_broker"},
    "celery-tasks": {"queue", "task", "job_exporter", "job_worker"},
    "celery-workers": {"worker", "job_exporter", "job_flower", "job_worker"},
    "rabbitmq-broker": {"queue", "job_rabbitmq", "job_rabbitmq_queues"},
    "redis-broker": {"job_redis_broker", "job_exporter"},
    "celery-latency": {"queue", "task", "job_worker", "job_rabbitmq_queues"},
    "celery-slo": set(),
}
# The views the community dashboards have and these add (mixin/dashboards/views.py).
NEW_PANELS = {
    "celery-overview": {"Received in range", "Success rate in range", "Mean runtime in range"},
    "celery-tasks": {
        "Tasks in range",
        "Mean runtime",
        "Top failing tasks",
        "Failures by task and exception",
        "Task mix by name",
        "Task mix by queue",
    },
    "celery-workers": {
        "Workers offline",
        "Workers up (exporter)",
        "Workers down (exporter)",
        "Retried tasks per worker",
        "Tasks per worker in range",
    },
}


def exprs():
    return [expr for d in DASHBOARDS for _, _, expr in iter_panel_queries(d)]


def exprs_raw():
    """Every panel query as written (variables not substituted)."""
    return [t["expr"] for d in DASHBOARDS for p in panels(d) for t in p["targets"]]


def test_every_dashboard_parses_and_is_named_by_its_uid():
    files = sorted(DASHBOARD_DIR.glob("*.json"))
    assert len(files) == len(CFG.dashboards.uids)
    for path in files:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert path.name == f"{dashboard['uid']}.json"
        assert dashboard["schemaVersion"] == builder.SCHEMA_VERSION


def test_uids_are_unique_and_equal_config():
    uids = [d["uid"] for d in DASHBOARDS]
    assert len(uids) == len(set(uids))
    assert set(uids) == set(CFG.dashboards.uids.values())
    titles = [d["title"] for d in DASHBOARDS]
    assert len(titles) == len(set(titles))


def test_committed_json_equals_generator_output(tmp_path):
    generate(CFG, tmp_path)
    generated = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_text(encoding="utf-8") for path in DASHBOARD_DIR.glob("*.json")}
    assert generated == build_all(CFG)
    assert committed == generated, "dashboards drifted: run `python -m mixin` and commit the JSON"


@pytest.mark.parametrize("uid,panel", ALL_PANELS, ids=PANEL_IDS)
def test_panel_has_datasource_and_queries(uid, panel):
    assert panel["type"] in MODERN_PANELS, f"deprecated or unexpected panel type {panel['type']}"
    assert panel["datasource"] == builder.DATASOURCE
    assert panel["targets"], "a panel needs at least one query"
    for target in panel["targets"]:
        assert target["datasource"] == builder.DATASOURCE
        assert target["expr"].strip()
    assert panel.get("description"), "every panel says what it shows"


def test_datasource_uid_is_the_provisioned_one():
    # Panels name the datasource variable; its default is the provisioned datasource's uid.
    assert builder.DATASOURCE == {"type": "prometheus", "uid": "${datasource}"}
    for d in DASHBOARDS:
        [variable] = [v for v in d["templating"]["list"] if v["name"] == "datasource"]
        assert variable["type"] == "datasource" and variable["query"] == "prometheus"
        assert variable["current"]["value"] == CFG.dashboards.datasource_uid
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    [datasource] = source["datasources"]
    assert datasource["uid"] == CFG.dashboards.datasource_uid
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == f"http://prometheus:{PORTS['prometheus']}"
    assert datasource["isDefault"] is True and datasource["editable"] is False
    assert datasource["jsonData"]["timeInterval"] == "5s"


def test_dashboard_provider():
    source = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    [provider] = source["providers"]
    assert provider["type"] == "file" and provider["folder"] == "Celery"
    assert provider["allowUiUpdates"] is False
    assert provider["updateIntervalSeconds"] == 30
    # compose mounts ./grafana/provisioning at /etc/grafana/provisioning
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_panels_fit_the_grid_and_do_not_overlap(dashboard):
    boxes = []
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["y"] >= 0 and grid["w"] > 0 and grid["h"] > 0
        assert grid["x"] + grid["w"] <= builder.GRID_COLUMNS, panel["title"]
        boxes.append((panel["title"], grid))
    for (a, ga), (b, gb) in itertools.combinations(boxes, 2):
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{a!r} overlaps {b!r}"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    titles = [panel["title"] for panel in panels(dashboard)]
    assert len(titles) == len(set(titles)), "the live check names panels by title"


def steps(panel):
    return [(step["value"], step["color"]) for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_colour_thresholds_equal_the_alert_thresholds():
    t = CFG.thresholds.knobs()
    expected = {  # a panel title containing the key -> its colour steps
        "Success rate": [(None, "red"), (t["success_ratio_min"], "green")],
        "CPU": [(None, "green"), (t["worker_cpu_ratio_max"], "red")],
        "Memory growth": [(None, "green"), (t["worker_memory_growth_bytes_per_s"], "red")],
        "Queue depth": (t["queue_backlog_max"], "red"),
        "Ready": (t["queue_backlog_max"], "red"),
    }
    checked = set()
    for _, panel in ALL_PANELS:
        for key, want in expected.items():
            if key in panel["title"]:
                checked.add(key)
                if isinstance(want, list):
                    assert steps(panel) == want, panel["title"]
                else:
                    assert want in steps(panel), panel["title"]
    assert checked == set(expected)
    # the table's CPU column too
    workers = next(d for d in DASHBOARDS if d["uid"] == CFG.dashboards.uids["workers"])
    table = next(p for p in panels(workers) if p["type"] == "table")
    cpu_column = next(
        o
        for o in table["fieldConfig"]["overrides"]
        if any(prop["id"] == "unit" and prop["value"] == "percentunit" for prop in o["properties"])
    )
    assert {"id": "thresholds", "value": BOARD.cpu_steps()} in cpu_column["properties"]


def test_every_selector_comes_from_config():
    # Every job matcher is a job variable, and each job variable defaults to config.JOBS.
    scoped = {BOARD.scoped(s) for s in selectors(CFG).values()}
    for expr in exprs_raw():
        for braces in re.findall(r"\{([^{}]*)\}", expr):
            if "job" not in braces:
                continue
            assert any(braces.startswith(s) for s in scoped), f"{{{braces}}} is not from selectors(CFG)"
    for d in DASHBOARDS:
        for variable in d["templating"]["list"]:
            if variable["name"].startswith("job_"):
                key = variable["name"][len("job_") :]
                assert variable["current"]["value"] == getattr(CFG.jobs, key)
                assert not variable["includeAll"] and not variable["multi"]
    for module in (ROOT / "mixin" / "dashboards").glob("*.py"):
        text = module.read_text()
        for job in CFG.jobs.model_dump().values():
            assert f'job="{job}"' not in text and f"job='{job}'" not in text, f"{module.name} hard-codes a job selector"


def test_range_windows_are_rate_interval_range_or_configured():
    allowed = {"$__rate_interval", "$__range", overview.BASELINE_FALLBACK_WINDOW}
    allowed |= {value for value in CFG.thresholds.knobs().values() if isinstance(value, str)}
    allowed |= {CFG.slos.period, *CFG.slos.windows.values()}
    for d in DASHBOARDS:
        for panel in panels(d):
            for target in panel["targets"]:
                for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                    assert window in allowed, f"{panel['title']}: [{window}]"


def test_template_variables():
    for d in DASHBOARDS:
        variables = d["templating"]["list"]
        names = [v["name"] for v in variables]
        assert names[:3] == COMMON_VARIABLES
        assert set(names[3:]) == VARIABLES[d["uid"]]
        for variable in variables[1:]:
            assert variable["type"] == "query" and variable["datasource"] == builder.DATASOURCE
            assert variable["query"]["query"].startswith("label_values(")
            if not variable["name"].startswith("job_"):
                assert variable["includeAll"] and variable["multi"]
                assert variable["allValue"] == ".*"  # also matches series without the label
        used = {name for expr in exprs_raw_of(d) for name in re.findall(r"\$(\w+)", expr) if not name.startswith("__")}
        assert used <= set(names)


def exprs_raw_of(dashboard):
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


SERIES = re.compile(r"([a-zA-Z_:]*)\{([^{}]*)\}")


def test_every_series_selector_carries_the_scope():
    """Every metric selector in a panel has the cluster/namespace matchers (ALERTS included)."""
    for d in DASHBOARDS:
        for expr in exprs_raw_of(d):
            for metric, braces in SERIES.findall(expr):
                assert BOARD.scope in braces, f"{metric}{{{braces}}} lacks {BOARD.scope}"


AGGREGATION = re.compile(r"\b(sum|max|min|avg|count|topk|bottomk)\b\s*(by\s*\(([^)]*)\))?\s*\(")


def test_every_aggregation_keeps_cluster_and_namespace():
    for d in DASHBOARDS:
        for expr in exprs_raw_of(d):
            for match in AGGREGATION.finditer(expr):
                if match.group(1) in ("topk", "bottomk"):
                    continue  # keep the labels of the series they select
                if match.group(1) == "count" and expr[match.end() :].startswith("ALERTS"):
                    continue  # the number of alerts firing in the selected scope
                labels = [label.strip() for label in (match.group(3) or "").split(",")]
                assert {"cluster", "namespace"} <= set(labels), f"{match.group(0)} in {expr}"


def test_scope_aggregations():
    def f(expr):
        return builder.scope_aggregations(expr, ["cluster", "namespace"])

    assert f("sum(x)") == "sum by (cluster, namespace) (x)"
    assert f("sum by (le) (x)") == "sum by (cluster, namespace, le) (x)"
    assert f("max by (namespace, worker)(x)") == "max by (cluster, namespace, worker) (x)"
    assert f("count(ALERTS{a}) or vector(0)") == "count(ALERTS{a}) or vector(0)"
    assert (
        f("histogram_quantile(0.9, sum by (le) (rate(x[1m])))")
        == "histogram_quantile(0.9, sum by (cluster, namespace, le) (rate(x[1m])))"
    )


def test_new_views_are_there_and_their_queries_come_from_the_mixin():
    for d in DASHBOARDS:
        titles = {p["title"] for p in panels(d)}
        assert NEW_PANELS.get(d["uid"], set()) <= titles
    tasks = next(d for d in DASHBOARDS if d["uid"] == CFG.dashboards.uids["tasks"])
    built = {
        p["title"]: [builder.scope_aggregations(t["expr"], BOARD.scope_labels) for t in p["targets"]]
        for p in views.task_panels(BOARD, 'name=~"$task"', 'queue_name=~"$queue"')
    }
    for p in panels(tasks):
        if p["title"] in built:
            assert [t["expr"] for t in p["targets"]] == built[p["title"]]
    table = next(p for p in panels(tasks) if p["title"] == "Tasks in range")
    columns = table["transformations"][1]["options"]["renameByName"]
    assert [columns[f"Value #{chr(ord('A') + i)}"] for i in range(11)] == [
        "Sent",
        "Received",
        "Started",
        "Succeeded",
        "Failed",
        "Retried",
        "Revoked",
        "Rejected",
        "Success ratio",
        "Mean runtime",
        "p95 runtime",
    ]
    assert all(t["instant"] and t["format"] == "table" and "[$__range]" in t["expr"] for t in table["targets"])
    task_link = next(o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "Task")
    assert task_link["properties"][0]["value"][0]["url"] == f"{CFG.urls.flower}/tasks?name=${{__value.raw}}"
    assert table["options"]["sortBy"] == [{"desc": True, "displayName": "Received"}]
    stacked = [p for p in panels(tasks) if p["title"].startswith("Task mix")]
    assert all(p["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal" for p in stacked)


def test_flower_links():
    links = {d["uid"]: json.dumps(d) for d in DASHBOARDS}
    flower = CFG.urls.flower
    assert f"{flower}/tasks?name=${{__field.labels.name}}&state=${{__field.labels.state}}" in links["celery-tasks"]
    assert f"{flower}/worker/${{__field.labels.worker}}" in links["celery-workers"]
    assert f"{flower}/worker/${{__value.raw}}" in links["celery-workers"]
    assert f'"url": "{flower}/"' in links["celery-overview"]


def test_empty_by_design_panels_are_listed():
    listed = {(d["title"], title) for d in DASHBOARDS for title in empty_by_design(d)}
    assert listed == {("Celery / Overview", "Firing alerts")}


def test_query_helper_substitutes_every_variable():
    tasks = next(d for d in DASHBOARDS if d["uid"] == CFG.dashboards.uids["tasks"])
    queries = iter_panel_queries(tasks, {"task": ["process_task", "process.data"], "__rate_interval": "2m"})
    assert queries and all("$" not in expr for _, _, expr in queries)
    assert any(r'name=~"(process_task|process\\.data)"' in expr for _, _, expr in queries)
    assert any("[2m]" in expr for _, _, expr in queries)
    assert {title for title, _, _ in queries} == {"Celery / Tasks"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_is_valid_promql(tmp_path):
    """promtool parses every expr (variables substituted) as a recording rule."""
    queries = exprs()
    for d in DASHBOARDS:  # and the series selectors inside label_values(...)
        for variable in d["templating"]["list"][1:]:
            selector = re.fullmatch(r"label_values\((.+), *\w+\)", variable["query"]["query"]).group(1)
            queries.append(re.sub(r"\$\w+", ".*", selector))
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(queries)],
            }
        ]
    }
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d["uid"])
def test_dashboard_passes_grafanas_schema(dashboard):
    assert problems(dashboard) == []


def test_the_schema_check_finds_what_grafana_does_not_know():
    board = json.loads(json.dumps(DASHBOARDS[0]))
    board["panels"][0]["options"]["colour"] = "red"
    board["panels"][0]["targets"][0]["exprr"] = "up"
    found = problems(board)
    assert any(p.endswith("/options/colour: not in Grafana's schema") for p in found), found
    assert any(p.endswith("/exprr: not in Grafana's schema") for p in found), found


def test_every_dashboard_says_it_is_generated():
    for d in DASHBOARDS:
        assert "generated" in d["tags"] and "Generated by `python -m mixin`" in d["description"], d["uid"]
