"""Static checks of the provisioned Grafana dashboards and their provisioning files."""

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mixin import config
from mixin.dashboards import build_all, builder, generate, overview
from tests.dashboard_queries import (
    DASHBOARD_DIR, empty_by_design, iter_panel_queries, load_dashboards, panels,
)

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "grafana" / "provisioning"
MODERN_PANELS = {"timeseries", "stat", "gauge", "bargauge", "table"}
DASHBOARDS = load_dashboards()
ALL_PANELS = [(d["uid"], p) for d in DASHBOARDS for p in panels(d)]
PANEL_IDS = [f"{uid}:{p['title']}" for uid, p in ALL_PANELS]
VARIABLES = {
    "celery-overview": {"queue"},
    "celery-tasks": {"queue", "task"},
    "celery-workers": {"worker"},
    "rabbitmq-broker": {"queue"},
    "redis-broker": set(),
}


def exprs():
    return [expr for d in DASHBOARDS for _, _, expr in iter_panel_queries(d)]


def test_every_dashboard_parses_and_is_named_by_its_uid():
    files = sorted(DASHBOARD_DIR.glob("*.json"))
    assert len(files) == len(config.DASHBOARD_UIDS)
    for path in files:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert path.name == f"{dashboard['uid']}.json"
        assert dashboard["schemaVersion"] == builder.SCHEMA_VERSION


def test_uids_are_unique_and_equal_config():
    uids = [d["uid"] for d in DASHBOARDS]
    assert len(uids) == len(set(uids))
    assert set(uids) == set(config.DASHBOARD_UIDS.values())
    titles = [d["title"] for d in DASHBOARDS]
    assert len(titles) == len(set(titles))


def test_committed_json_equals_generator_output(tmp_path):
    generate(tmp_path)
    generated = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_text(encoding="utf-8")
                 for path in DASHBOARD_DIR.glob("*.json")}
    assert generated == build_all()
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
    assert builder.DATASOURCE == {"type": "prometheus", "uid": config.DATASOURCE_UID}
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    [datasource] = source["datasources"]
    assert datasource["uid"] == config.DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
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
        apart = (ga["x"] + ga["w"] <= gb["x"] or gb["x"] + gb["w"] <= ga["x"]
                 or ga["y"] + ga["h"] <= gb["y"] or gb["y"] + gb["h"] <= ga["y"])
        assert apart, f"{a!r} overlaps {b!r}"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    titles = [panel["title"] for panel in panels(dashboard)]
    assert len(titles) == len(set(titles)), "the live check names panels by title"


def steps(panel):
    return [(step["value"], step["color"])
            for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_colour_thresholds_equal_the_alert_thresholds():
    t = config.THRESHOLDS
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
    workers = next(d for d in DASHBOARDS if d["uid"] == config.DASHBOARD_UIDS["workers"])
    table = next(p for p in panels(workers) if p["type"] == "table")
    cpu_column = next(o for o in table["fieldConfig"]["overrides"]
                      if any(prop["id"] == "unit" and prop["value"] == "percentunit"
                             for prop in o["properties"]))
    assert {"id": "thresholds", "value": builder.cpu_steps()} in cpu_column["properties"]


def test_every_selector_comes_from_config():
    selectors = set(config.SELECTORS.values())
    for expr in exprs():
        for matcher in re.findall(r'\bjob\s*=~?\s*"[^"]*"', expr):
            assert matcher in selectors, f"{matcher} is not from config.SELECTORS: {expr}"
    for module in (ROOT / "mixin" / "dashboards").glob("*.py"):
        assert "job=" not in module.read_text(), f"{module.name} hard-codes a job selector"


def test_range_windows_are_rate_interval_range_or_configured():
    allowed = {"$__rate_interval", "$__range", overview.BASELINE_FALLBACK_WINDOW}
    allowed |= {value for value in config.THRESHOLDS.values() if isinstance(value, str)}
    for d in DASHBOARDS:
        for panel in panels(d):
            for target in panel["targets"]:
                for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                    assert window in allowed, f"{panel['title']}: [{window}]"


def test_template_variables():
    for d in DASHBOARDS:
        variables = d["templating"]["list"]
        assert {v["name"] for v in variables} == VARIABLES[d["uid"]]
        for variable in variables:
            assert variable["type"] == "query" and variable["datasource"] == builder.DATASOURCE
            assert variable["definition"].startswith("label_values(")
            assert variable["includeAll"] and variable["multi"]
        used = {name for expr in (t["expr"] for p in panels(d) for t in p["targets"])
                for name in re.findall(r"\$(\w+)", expr) if not name.startswith("__")}
        assert used <= VARIABLES[d["uid"]]


def test_flower_links():
    links = {d["uid"]: json.dumps(d) for d in DASHBOARDS}
    flower = config.FLOWER_URL
    assert (f"{flower}/tasks?name=${{__field.labels.name}}&state=${{__field.labels.state}}"
            in links["celery-tasks"])
    assert f"{flower}/worker/${{__field.labels.worker}}" in links["celery-workers"]
    assert f"{flower}/worker/${{__value.raw}}" in links["celery-workers"]
    assert f'"url": "{flower}/"' in links["celery-overview"]


def test_empty_by_design_panels_are_listed():
    listed = {(d["title"], title) for d in DASHBOARDS for title in empty_by_design(d)}
    assert listed == {("Celery / Overview", "Firing alerts")}


def test_query_helper_substitutes_every_variable():
    tasks = next(d for d in DASHBOARDS if d["uid"] == config.DASHBOARD_UIDS["tasks"])
    queries = iter_panel_queries(tasks, {"task": ["process_task", "process.data"],
                                         "__rate_interval": "2m"})
    assert queries and all("$" not in expr for _, _, expr in queries)
    assert any(r'name=~"(process_task|process\\.data)"' in expr for _, _, expr in queries)
    assert any("[2m]" in expr for _, _, expr in queries)
    assert {title for title, _, _ in queries} == {"Celery / Tasks"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_is_valid_promql(tmp_path):
    """promtool parses every expr (variables substituted) as a recording rule."""
    queries = exprs()
    for d in DASHBOARDS:  # and the series selectors inside label_values(...)
        for variable in d["templating"]["list"]:
            selector = re.fullmatch(r"label_values\((.+), *\w+\)", variable["definition"]).group(1)
            queries.append(re.sub(r"\$\w+", ".*", selector))
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(queries)]}]}
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "check", "rules", str(path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
