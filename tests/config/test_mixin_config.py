"""The mixin as a library people configure: a user's file renders their rules, promtool tests and
dashboards; bad settings are refused in one line; sources the user does not run never page; the
hand-written tests pin the bundle's thresholds; the mixin's code keeps its shape."""

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixin.config import Config, ConfigError, build
from tests.grafana_schema import problems
from tests.promtool import promtool, promtool_on_trimmed_rules

REPO = Path(__file__).resolve().parents[2]
MIXIN = REPO / "mixin"
HERE = Path(__file__).resolve().parent

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")


def example():
    """The complete example of docs/mixin.md (its first YAML block)."""
    return re.search(r"```yaml\n(.*?)```", (REPO / "docs" / "mixin.md").read_text(), re.S).group(1)


def render(tmp_path, config_text=None, *extra):
    args = [sys.executable, "-m", "mixin", "render", "--out", str(tmp_path / "out"), *extra]
    if config_text is not None:
        (tmp_path / "my-celery.yaml").write_text(config_text)
        args += ["--config", str(tmp_path / "my-celery.yaml")]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)


def alerts_of(path):
    return {r["alert"]: r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "alert" in r}


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("team")
    result = render(tmp, example())
    assert result.returncode == 0, result.stderr
    return tmp / "out"


def test_the_example_renames_jobs_links_and_thresholds(team):
    text = (team / "celery.rules.yml").read_text()
    rules = alerts_of(team / "celery.rules.yml")
    assert 'job="celery_exporter"' not in text and 'job="flower"' not in text
    assert 'job="celery-exporter"' in text and 'job="flower-prod"' in text
    assert "localhost" not in text
    for name, rule in rules.items():
        notes = rule["annotations"]
        assert notes["runbook_url"] == f"https://runbooks.example.com/celery/{name}"
        assert notes["dashboard_url"].startswith("https://grafana.example.com/d/")
        assert rule["labels"]["team"] == "payments"
    assert "CeleryThroughputBelowBaseline" not in rules
    assert rules["CeleryQueueBacklog"]["labels"]["severity"] == "critical"
    assert rules["CeleryQueueBacklog"]["expr"].startswith("celery:queue_messages_ready:sum > 5")
    assert "more than 5 for" in rules["CeleryQueueBacklog"]["annotations"]["description"]
    # No worker /metrics: nothing reads them, nothing pages about them.
    assert "celery_worker_" not in text.replace("celery_worker_up", "")
    assert not {"CeleryWorkerCpuHigh", "CeleryWorkerMemoryGrowing", "CeleryEventsLost"} & set(rules)


@needs_promtool
def test_the_examples_rules_and_generated_tests_pass_promtool(team, tmp_path):
    assert promtool("check", "rules", "celery.rules.yml", cwd=team).returncode == 0
    tests = sorted((team / "tests").glob("*.test.yml"))
    assert len(tests) >= 5
    run = promtool_on_trimmed_rules(tests, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    # The generated cases expect the team's labels and severities.
    assert 'team="payments"' in (team / "tests" / "queue.test.yml").read_text()


def test_the_examples_dashboards_pass_grafanas_schema_and_link_the_teams_urls(team):
    boards = {p.name: json.loads(p.read_text()) for p in (team / "dashboards").glob("*.json")}
    # No worker /metrics: no latency dashboard; the SLOs keep the success SLI (the exporter's).
    assert set(boards) == {
        "celery-overview.json",
        "celery-tasks.json",
        "celery-workers.json",
        "celery-slo.json",
        "rabbitmq-broker.json",
    }
    for name, board in boards.items():
        assert problems(board) == [], name
        text = json.dumps(board)
        assert "localhost" not in text and "$job_worker" not in text, name
        assert "https://flower.example.com" in text or name in ("rabbitmq-broker.json", "celery-slo.json"), name
    variables = {v["name"]: v for v in boards["celery-overview.json"]["templating"]["list"]}
    assert variables["job_exporter"]["current"]["value"] == "celery-exporter"


@pytest.mark.parametrize(
    "config_text, expected",
    [
        (
            "thresholds:\n  succes_ratio_min: 0.9\n",
            "thresholds.succes_ratio_min: unknown key (did you mean success_ratio_min?)",
        ),
        ("thresholds:\n  success_ratio_min: 1.5\n", "thresholds.success_ratio_min: 1.5:"),
        ("thresholds:\n  success_for: 5 parsecs\n", "thresholds.success_for: '5 parsecs': not a Prometheus duration"),
        ("thresholds:\n  queue_backlog_max: ten\n", "thresholds.queue_backlog_max: 'ten':"),
        ("alerts:\n  CeleryQueueBacklog: {severity: urgent}\n", "alerts.CeleryQueueBacklog.severity: 'urgent':"),
        ("urls:\n  runbook: https://runbooks.example.com/celery\n", "urls: "),
        ("sources:\n  brokers: [kafka]\n", "sources.brokers.0: 'kafka':"),
        ("- jobs\n", "expected a mapping of settings at the top level"),
        ("jobs: {exporter: [\n", "not valid YAML"),
    ],
)
def test_a_bad_setting_is_refused_in_one_line_naming_it(tmp_path, config_text, expected):
    result = render(tmp_path, config_text)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m mixin: "), result.stderr
    assert expected in lines[0]
    assert not (tmp_path / "out").exists(), "nothing is written for a configuration that is refused"


def test_a_missing_file_is_refused_in_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mixin",
            "render",
            "--config",
            str(tmp_path / "nope.yaml"),
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "nope.yaml: cannot read it" in result.stderr and "Traceback" not in result.stderr


def test_overlays_build_on_each_other():
    mine = build({"jobs": {"worker": "workers"}})
    theirs = build({"thresholds": {"queue_backlog_max": 3}}, base=mine)
    assert theirs.jobs.worker == "workers" and theirs.thresholds.queue_backlog_max == 3
    with pytest.raises(ConfigError, match="runtime_baseline_offset"):
        build({"thresholds": {"runtime_for": "1h"}})


@needs_promtool
def test_exporter_only_rules_stay_silent_through_healthy_traffic_and_fire_on_the_exporters_signals(tmp_path):
    result = render(tmp_path, (HERE / "exporter_only" / "config.yaml").read_text())
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert "absent(" not in (out / "celery.rules.yml").read_text()
    shutil.copy(HERE / "exporter_only" / "exporter_only.test.yml", out)
    run = promtool("test", "rules", "exporter_only.test.yml", cwd=out)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_the_hand_written_tests_fail_when_a_threshold_changes_without_them(tmp_path):
    """alerts/tests/ pins the bundle's values: the same tests against rules with the success
    threshold moved from 95 % to 90 % fail, on that alert."""
    result = render(tmp_path, "thresholds:\n  success_ratio_min: 0.9\n")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    shutil.rmtree(out / "tests")
    shutil.copytree(REPO / "alerts" / "tests", out / "tests")
    run = promtool("test", "rules", "tests/tasks.test.yml", cwd=out)
    assert run.returncode != 0
    assert "CelerySuccessRateLow" in run.stdout + run.stderr


# --- the mixin's own shape ------------------------------------------------------------------------


def mixin_modules():
    return {
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p for p in MIXIN.rglob("*.py")
    }


def test_no_branching_on_profile_names():
    for path in MIXIN.rglob("*.py"):
        assert "profile.name" not in path.read_text(), path


def test_no_import_cycle_among_mixin_modules():
    modules = mixin_modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mixin"):
                # `from package import submodule` depends on the submodule; anything else on the module.
                submodules = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                deps |= submodules or {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("mixin")}
        graph[name] = {d for d in deps if d in modules and d != name}

    def visit(node, stack):
        assert node not in stack, f"import cycle: {' -> '.join([*stack, node])}"
        for dep in graph[node]:
            visit(dep, [*stack, node])

    for name in graph:
        visit(name, [])


def test_no_function_in_the_mixin_is_over_80_lines():
    long = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in MIXIN.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80
    ]
    assert not long, long


def test_the_bundles_configuration_is_the_default():
    assert Config() == build({})


SECOND_OBJECTIVE = """
slos:
  objectives:
  - name: all-tasks
    success_ratio: 0.99
    queue_wait: {seconds: 30, ratio: 0.95}
    runtime: {seconds: 60, ratio: 0.95}
  - name: emails
    task: tasks.send_email
    queue: emails
    success_ratio: 0.999
    queue_wait: {seconds: 10, ratio: 0.99}
"""


@needs_promtool
def test_a_second_objective_renders_its_rules_alerts_tests_and_dashboard_rows(tmp_path):
    result = render(tmp_path, SECOND_OBJECTIVE)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    groups = yaml.safe_load((out / "celery.rules.yml").read_text())["groups"]
    records = [r for g in groups for r in g["rules"] if "record" in r and r.get("labels", {}).get("slo") == "emails"]
    assert {r["labels"]["sli"] for r in records} == {"success", "queue_wait"}
    assert len(records) == 2 * 7, "one record per SLI and window"
    success_5m = next(r for r in records if r["labels"]["sli"] == "success" and r["record"].endswith("rate5m"))
    assert 'name=~"tasks.send_email"' in success_5m["expr"] and 'queue_name=~"emails"' in success_5m["expr"]
    wait = next(r for r in records if r["labels"]["sli"] == "queue_wait")
    assert 'task=~"tasks.send_email"' in wait["expr"] and 'le=~"10|10.0"' in wait["expr"]
    burns = [
        r
        for g in groups
        for r in g["rules"]
        if r.get("alert") == "CeleryErrorBudgetBurn" and r["labels"]["slo"] == "emails"
    ]
    assert len(burns) == 2 * 4 and {r["labels"]["severity"] for r in burns} == {"critical", "warning"}
    fast_page = next(b for b in burns if b["labels"]["sli"] == "success" and b["labels"]["long_window"] == "1h")
    assert "> 0.0144" in fast_page["expr"], "14.4 x the 0.1 % budget"
    board = json.loads((out / "dashboards" / "celery-slo.json").read_text())
    assert {p["title"] for p in board["panels"]} >= {
        "emails: success: error budget left",
        "emails: queue wait: burn rate",
    }
    assert problems(board) == []
    run = promtool_on_trimmed_rules([out / "tests" / "slo.test.yml"], tmp_path / "trimmed")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SLO emails success" in (out / "tests" / "slo.test.yml").read_text()


def test_an_slo_latency_bound_must_be_a_bucket_bound(tmp_path):
    result = render(tmp_path, "slos:\n  objectives:\n  - {name: x, queue_wait: {seconds: 31, ratio: 0.9}}\n")
    assert result.returncode == 2
    assert "queue_wait.seconds 31 is not a bucket bound of latency.buckets" in result.stderr
