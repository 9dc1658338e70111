"""What the chart carries is the mixin's output: the generated files are current; for every
combination of enabled components the PrometheusRule's groups are exactly the mixin's rules for that
configuration, pass `promtool check rules` and the mixin's generated promtool tests; its links,
labels and disabled alerts are the mixin's own for the same settings; each dashboard ConfigMap holds
the generated dashboard; the Alertmanager values pass `amtool check-config` with the bundle's routes."""

import collections
import itertools
import json
import shutil

import pytest
import yaml

from mixin import alert_tests, dashboards, rules
from mixin import chart as chart_gen
from mixin.config import build
from tests.promtool import alerts_in, checked_alerts, trimmed
from tests.k8s.chart import (
    CHART,
    REPO,
    SCENARIOS,
    of_kind,
    one,
    render,
    rule_spec,
    run,
    scenario_docs,
    write_rules,
)

CFG = chart_gen.config()

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")
needs_amtool = pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool missing: run `make deps`")


@pytest.fixture(scope="module", autouse=True)
def quiet_helm():
    from helm_python import disable_logging

    disable_logging()


def test_generated_chart_files_are_current():
    for rel, text in chart_gen.build_all().items():
        path = CHART / rel
        assert path.exists(), f"{rel} missing: run `make generate`"
        assert path.read_text(encoding="utf-8") == text, f"{rel} is stale: run `make generate`"


def test_the_values_table_describes_every_value():
    """Every value has a comment in values.yaml, so the README's table has a row for it."""
    readme = (CHART / "README.md").read_text()
    for paths, description in chart_gen.values_rows((CHART / "values.yaml").read_text()):
        assert f"`{'.'.join(paths[0])}`" in readme and description
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])


# --- Rules: one variant per combination of components ---------------------------------------------

STORE = chart_gen.rules_store()
BROKER_VALUES = {
    "rabbitmq": {"rabbitmq": {"serviceMonitor": {"enabled": True}}},
    "redis": {"broker": {"kind": "redis"}, "redis": {"exporter": {"enabled": True}}},
    "none": {},
}


def values_for(broker, exporter, flower, workers, **extra):
    """Chart values that enable exactly these components (no dashboards: only the rules are read)."""
    return {
        **BROKER_VALUES[broker],
        "exporter": {"enabled": exporter},
        "flower": {"enabled": flower},
        "workers": {"podMonitor": {"enabled": workers}},
        "dashboards": {"enabled": False},
        **extra,
    }


VARIANTS = list(itertools.product(chart_gen.BROKERS, (True, False), (True, False), (True, False)))


def without_watchdog(spec):
    return {"groups": [{**g, "rules": [r for r in g["rules"] if r.get("alert") != "Watchdog"]} for g in spec["groups"]]}


@pytest.mark.parametrize("broker, exporter, flower, workers", VARIANTS)
def test_each_combination_of_components_gets_the_mixins_rules_for_it(broker, exporter, flower, workers):
    """The PrometheusRule is the mixin's rule file for the sources the release enables: nothing reads
    a component that is off, so it never pages."""
    key = chart_gen.variant_key(broker, exporter, flower, workers)
    docs = render(values_for(broker, exporter, flower, workers))
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["annotations"]["celery-observability/rules-variant"] == key
    cfg = chart_gen.variants()[key]
    assert rule["spec"] == without_watchdog(rules.build(cfg))
    text = json.dumps(rule["spec"])
    if not flower:
        assert 'job=\\"flower\\"' not in text
    if not workers:
        assert "celery_worker_" not in text.replace("celery_worker_up", "")
    if broker != "rabbitmq":
        assert "rabbitmq_" not in text
    if broker != "redis":
        assert "redis_" not in text


def test_links_labels_and_disabled_alerts_are_the_mixins_for_the_same_settings():
    """rules.* values give the rules the mixin renders with those urls, rule_labels and alerts
    disabled (kube-prometheus-stack's defaultRules), and the templates of the annotations survive."""
    urls = {
        "runbook": "https://runbooks.example.com/celery/{alert}",
        "grafana": "https://grafana.example.com",
        "flower": "https://flower.example.com",
    }
    values = values_for(
        "rabbitmq",
        True,
        True,
        True,
        rules={
            "runbookUrl": urls["runbook"],
            "grafanaUrl": urls["grafana"] + "/",
            "flowerUrl": urls["flower"],
            "additionalLabels": {"team": "payments"},
            "disabled": {"CeleryThroughputBelowBaseline": True},
        },
        watchdog={"enabled": True},
    )
    spec = one(render(values), "PrometheusRule")["spec"]
    key = chart_gen.variant_key("rabbitmq", True, True, True)
    mixin = build(
        {
            "urls": urls,
            "rule_labels": {"team": "payments"},
            "alerts": {"CeleryThroughputBelowBaseline": {"enabled": False}},
        },
        base=chart_gen.variants()[key],
    )
    assert spec == rules.build(mixin)
    notes = {r["alert"]: r["annotations"] for r in alerts_in(spec)}
    assert notes["CeleryQueueBacklog"]["dashboard_url"] == "https://grafana.example.com/d/rabbitmq-broker"
    assert (
        notes["CeleryTaskSuccessRateLow"]["flower_url"]
        == "https://flower.example.com/tasks?name={{ $labels.name }}&state=FAILURE"
    )
    assert "{{ $value | humanizePercentage }}" in notes["CeleryEventsLost"]["description"]
    assert "{{ $labels.queue }}" in notes["CeleryQueueBacklog"]["summary"]
    # Extra annotations never replace an alert's own.
    spec = one(
        render({**values, "rules": {"additionalAnnotations": {"owner": "payments", "summary": "x"}}}), "PrometheusRule"
    )["spec"]
    assert all(r["annotations"]["owner"] == "payments" and r["annotations"]["summary"] != "x" for r in alerts_in(spec))


def test_no_link_without_a_url_and_no_flower_link_without_flower():
    plain = alerts_in(one(render(), "PrometheusRule")["spec"])
    assert not any({"runbook_url", "dashboard_url", "flower_url"} & set(r["annotations"]) for r in plain)
    no_flower = alerts_in(
        one(render({"flower": {"enabled": False}, "rules": {"flowerUrl": "https://f.example.com"}}), "PrometheusRule")[
            "spec"
        ]
    )
    assert not any("flower_url" in r["annotations"] for r in no_flower)


@needs_promtool
@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "team-b"])
def test_promtool_checks_each_scenarios_extracted_rules(scenario, tmp_path):
    path = write_rules(rule_spec(scenario_docs(scenario)), tmp_path / "celery.rules.yml")
    result = run("promtool", "check", "rules", str(path))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


@needs_promtool
def test_promtool_checks_every_variant(tmp_path):
    paths = [
        str(write_rules(chart_gen.variant_spec(key, STORE), tmp_path / f"{i}.yml"))
        for i, key in enumerate(STORE["variants"])
    ]
    result = run("promtool", "check", "rules", *paths)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("SUCCESS") == len(paths)


def generated_cases():
    """{test stem: [(rules, test document)]}: the mixin's generated promtool tests of every variant,
    each against the variant's rules trimmed to the alerts it checks and the recording rules they read
    (the same rules, without evaluating the others at every step of a day-long case), identical pairs
    once."""
    cases = collections.defaultdict(dict)
    for key, cfg in chart_gen.variants().items():
        spec = chart_gen.variant_spec(key, STORE)
        for stem, doc in alert_tests.build(cfg).items():
            rules_ = trimmed(spec, checked_alerts(doc))
            assert {r["alert"] for r in alerts_in(rules_)} == checked_alerts(doc), (key, stem)
            cases[stem][json.dumps([rules_, doc], sort_keys=True)] = (rules_, doc)
    return {stem: list(pairs.values()) for stem, pairs in cases.items()}


CASES = generated_cases()


def run_cases(pairs, tmp_path):
    files = []
    for i, (rules_, doc) in enumerate(pairs):
        write_rules(rules_, tmp_path / f"rules-{i}.yml")
        (tmp_path / f"case-{i}.test.yml").write_text(
            yaml.safe_dump({**doc, "rule_files": [f"rules-{i}.yml"]}, sort_keys=False)
        )
        files.append(f"case-{i}.test.yml")
    return run("promtool", "test", "rules", *files, cwd=tmp_path)


@needs_promtool
@pytest.mark.parametrize("stem", sorted(CASES))
def test_the_mixins_generated_promtool_tests_pass_on_every_variant(stem, tmp_path):
    result = run_cases(CASES[stem], tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@needs_promtool
def test_the_generated_tests_fail_when_the_rules_change(tmp_path):
    """The cases really exercise the rules: raising a threshold makes them fail."""
    limit = f"> {CFG.thresholds.queue_backlog_max:g}"
    changed = []
    for rules_, doc in CASES["queue"]:
        rules_ = json.loads(json.dumps(rules_))
        for r in alerts_in(rules_):
            r["expr"] = r["expr"].replace(limit, "> 100000")
        changed.append((rules_, doc))
    assert run_cases(changed, tmp_path).returncode != 0


# --- Dashboards ---------------------------------------------------------------------------------------


def _configmaps(docs):
    return {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap") if "-dashboard-" in d["metadata"]["name"]}


def test_each_dashboard_configmap_is_the_generated_dashboard():
    generated = dashboards.build_all(CFG)
    cms = _configmaps(render())
    assert len(cms) == len(generated) - 1  # the other broker's dashboard is left out
    for cm in cms.values():
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((name, text),) = cm["data"].items()
        assert text == generated[name], name
    assert not _configmaps(render({"dashboards": {"enabled": False}}))


def _with_uid(node, uid):
    if isinstance(node, dict):
        if node.get("type") == "prometheus" and node.get("uid") == CFG.dashboards.datasource_uid:
            node = {**node, "uid": uid}
        if node.get("type") == "datasource" and "current" in node:  # the datasource variable's default
            node = {**node, "current": {**node["current"], "value": uid}}
        return {k: _with_uid(v, uid) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_uid(v, uid) for v in node]
    return node


def test_datasource_uid_is_configurable_and_changes_nothing_else():
    generated = dashboards.build_all(CFG)
    for cm in _configmaps(scenario_docs("everything")).values():
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Celery"}
        ((name, text),) = cm["data"].items()
        got, want = json.loads(text), json.loads(generated[name])
        assert got != want
        assert got == _with_uid(want, "my-prom"), name


# --- Alertmanager ---------------------------------------------------------------------------------------

ALERTMANAGER_VALUES = CHART / "examples" / "kube-prometheus-stack-alertmanager.yaml"


@needs_amtool
def test_alertmanager_values_pass_amtool(tmp_path):
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(yaml.safe_load(ALERTMANAGER_VALUES.read_text())["alertmanager"]["config"]))
    result = run("amtool", "check-config", str(config_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alertmanager_values_keep_the_bundle_routes_and_inhibitions():
    bundle = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    values = yaml.safe_load(ALERTMANAGER_VALUES.read_text())["alertmanager"]
    assert values["config"]["route"] == bundle["route"]
    assert values["config"]["inhibit_rules"] == bundle["inhibit_rules"]
    assert [r["name"] for r in values["config"]["receivers"]] == [r["name"] for r in bundle["receivers"]]
    secret_dir = f"/etc/alertmanager/secrets/{values['alertmanagerSpec']['secrets'][0]}/"
    assert values["config"]["global"]["slack_api_url_file"].startswith(secret_dir)
    assert values["config"]["global"]["smtp_auth_password_file"].startswith(secret_dir)
