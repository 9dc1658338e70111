"""The mixin's cardinality switches (mixin/config.py Cardinality) decide the Prometheus config, the
rules and the dashboards together: each setting renders a config promtool accepts with its rules,
rules whose generated promtool tests pass, and nothing that reads a series the setting removes."""

import re
import shutil

import pytest
import yaml

from mixin import alert_tests, dashboards, profiles, prometheus, records, rules
from mixin.config import Config, ConfigError, build
from native import paths
from tests.promtool import promtool, promtool_on_trimmed_rules

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")

SETTINGS = {
    "bundle": lambda: Config(),
    "flower per task": lambda: build({"cardinality": {"flower_task_series": True}}),
    # The fleet profile: latency per queue, with fewer bucket bounds.
    "latency per queue": lambda: profiles.apply("fleet"),
}
FLOWER_SERIES = re.compile(r"flower_\w+\{([^}]*)\}")
WORKER_STAGE = re.compile(r"(?:celery_worker_task_\w+_seconds_\w+|celery:worker_task_\w+:rate)\{([^}]*)\}")
TASK_MATCHER = re.compile(r"(?:^|[\s,{])task\s*(?:=|!=|=~|!~)")
BY_CLAUSE = re.compile(r"\bby \(([^)]*)\)")


def groups_by_task(expr):
    return any("task" in [label.strip() for label in labels.split(",")] for labels in BY_CLAUSE.findall(expr))


def render(cfg, out):
    """prometheus.yml as the Config wants it, its rules next to it, and the generated tests."""
    config = prometheus.with_cardinality(yaml.safe_load(prometheus.SOURCE.read_text()), cfg)
    config["rule_files"] = ["celery.rules.yml"]
    config.pop("alerting", None)
    (out / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    rules.write(out / "celery.rules.yml", cfg)
    (out / "tests").mkdir()
    for stem, doc in alert_tests.build(cfg).items():
        (out / "tests" / f"{stem}.test.yml").write_text(alert_tests.render(doc, "test"))
    return config


def flower_job(config, cfg):
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == cfg.jobs.flower]
    return job


def all_rule_exprs(cfg):
    return "\n".join(r["expr"] for g in rules.build(cfg)["groups"] for r in g["rules"])


@pytest.mark.parametrize("name", SETTINGS)
def test_each_setting_renders_a_valid_config_and_rules_that_pass_their_tests(name, tmp_path):
    cfg = SETTINGS[name]()
    render(cfg, tmp_path)
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "celery.rules.yml" in checked.stdout  # promtool loaded the rules through the config
    if name == "bundle":
        return  # the bundle's: hand-written tests (test_alert_rules.py), an example's generated ones (test_mixin_config.py)
    files = affected_test_files(cfg, tmp_path / "tests")
    assert files, "the setting changes no rule"
    tested = promtool_on_trimmed_rules([tmp_path / "tests" / f for f in files], tmp_path / "trimmed")
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]


def rule_exprs(cfg):
    return {r.get("alert") or r["record"]: r["expr"] for g in rules.build(cfg)["groups"] for r in g["rules"]}


def affected_test_files(cfg, tests_dir):
    """The generated test files a setting can change the outcome of: those whose text differs from
    the bundle's, or that test an alert whose expression, or a record it reads (at any depth),
    differs. The others test the very same expressions as the bundle's (tested elsewhere); the
    slowest of them replays a day of samples."""
    bundle, mine = rule_exprs(Config()), rule_exprs(cfg)
    changed = {name for name, expr in mine.items() if bundle.get(name) != expr}
    while True:
        more = {name for name, expr in mine.items() if name not in changed and any(c in expr for c in changed)}
        if not more:
            break
        changed |= more
    theirs = {stem: alert_tests.render(doc, "test") for stem, doc in alert_tests.build(Config()).items()}
    files = []
    for path in sorted(tests_dir.glob("*.test.yml")):
        text = path.read_text()
        if text != theirs.get(path.name.removesuffix(".test.yml")) or any(
            f'alertname="{name}"' in text for name in changed
        ):
            files.append(path.name)
    return files


def test_flower_series_by_task_are_dropped_at_scrape_unless_kept(tmp_path):
    lean, kept = SETTINGS["bundle"](), SETTINGS["flower per task"]()
    assert flower_job(render(lean, tmp_path), lean)["metric_relabel_configs"] == [
        {"source_labels": ["task"], "regex": ".+", "action": "drop"}
    ]
    assert "metric_relabel_configs" not in flower_job(
        prometheus.with_cardinality(yaml.safe_load(prometheus.SOURCE.read_text()), kept), kept
    )


@pytest.mark.parametrize("name", ["bundle", "latency per queue"])
def test_without_flowers_per_task_series_nothing_reads_flower_by_task(name):
    cfg = SETTINGS[name]()
    texts = [all_rule_exprs(cfg)] + list(dashboards.build_all(cfg).values())
    for text in texts:
        for braces in FLOWER_SERIES.findall(text):
            assert not TASK_MATCHER.search(braces), braces
        assert not re.search(r"by \([^)]*\btask\b[^)]*\) \(max_over_time\(flower", text)
    assert records.FLOWER_WORKER_EVENTS not in all_rule_exprs(cfg)


def test_keeping_flowers_per_task_series_aggregates_them_per_worker_for_the_dashboards():
    cfg = SETTINGS["flower per task"]()
    recorded = {r["record"] for g in rules.build(cfg)["groups"] for r in g["rules"] if "record" in r}
    assert records.FLOWER_WORKER_EVENTS in recorded
    workers = dashboards.build_all(cfg)[f"{cfg.dashboards.uids['workers']}.json"]
    assert records.FLOWER_WORKER_EVENTS in workers and "flower_events_total" not in workers


def test_latency_per_queue_leaves_the_task_label_out_everywhere():
    cfg = SETTINGS["latency per queue"]()
    texts = [all_rule_exprs(cfg)] + list(dashboards.build_all(cfg).values())
    for text in texts:
        for braces in WORKER_STAGE.findall(text):
            assert not TASK_MATCHER.search(braces), braces
    stage = [
        r for g in rules.build(cfg)["groups"] for r in g["rules"] if r.get("record") == records.stage_buckets("runtime")
    ]
    assert stage and not groups_by_task(stage[0]["expr"])
    assert groups_by_task(
        next(
            r["expr"]
            for g in rules.build(Config())["groups"]
            for r in g["rules"]
            if r.get("record") == records.stage_buckets("runtime")
        )
    )
    latency = dashboards.build_all(cfg)[f"{cfg.dashboards.uids['latency']}.json"]
    assert "Runtime p95 per task" not in latency and '"name": "task"' not in latency


def test_an_slo_by_task_needs_the_task_label():
    objective = {"name": "emails", "task": "tasks.send_email", "queue_wait": {"seconds": 30, "ratio": 0.99}}
    overrides = {"cardinality": {"worker_latency_by_task": False}, "slos": {"objectives": [objective]}}
    with pytest.raises(ConfigError) as err:
        build(overrides)
    assert (
        str(err.value).count("\n") == 0 and "'emails'" in str(err.value) and "worker_latency_by_task" in str(err.value)
    )
    # The success SLI reads the exporter, not the workers' histograms: allowed per task.
    build(
        {**overrides, "slos": {"objectives": [{"name": "emails", "task": "tasks.send_email", "success_ratio": 0.99}]}}
    )


def test_the_committed_configs_follow_the_bundles_setting():
    cfg = Config()
    want = prometheus.flower_metric_relabel_configs(cfg)
    for path in (prometheus.SOURCE, prometheus.REDIS_CONFIG):
        config = yaml.safe_load(path.read_text())
        assert flower_job(config, cfg).get("metric_relabel_configs", []) == want, path.name
    scrape = yaml.safe_load((paths.REPO / "charts" / "celery-observability" / "files" / "scrape.yaml").read_text())
    assert scrape["flowerDrop"] == [{"sourceLabels": ["task"], "regex": ".+", "action": "drop"}]


def test_render_writes_the_flower_job_a_setting_needs(tmp_path):
    from mixin.render import render as render_all

    render_all(SETTINGS["bundle"](), tmp_path, "test")
    job = yaml.safe_load((tmp_path / prometheus.FLOWER_SCRAPE).read_text())["scrape_configs"][0]
    assert job["metric_relabel_configs"][0]["source_labels"] == ["task"]
