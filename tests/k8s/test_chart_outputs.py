"""What the chart carries is the mixin's output, unchanged: the PrometheusRule's groups are the
chart's configuration (the kubernetes profile, `python -m mixin render --profile kubernetes`) and pass `promtool check rules` and
that profile's generated promtool tests, each dashboard ConfigMap holds exactly the
generated dashboard, and the Alertmanager values pass `amtool check-config` with the same routes and
inhibitions as alertmanager/alertmanager.yml."""
import json
import shutil
import sys

import pytest
import yaml

from mixin import chart as chart_gen
from mixin import dashboards, profiles
from mixin.render import render as render_config
from tests.k8s.chart import CHART, FEATURES, REPO, of_kind, one, render, run
from mixin.config import Config

CFG = Config()

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")
needs_amtool = pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool missing: run `make deps`")


@pytest.fixture(scope="module")
def kubernetes_profile(tmp_path_factory):
    """The chart configuration's rules and generated promtool tests, as the mixin renders them."""
    out = tmp_path_factory.mktemp("kubernetes-profile")
    render_config(chart_gen.config(), out, "the chart's configuration")
    return out


def extracted_rules(tmp_path):
    """spec of the rendered PrometheusRule, written as a Prometheus rule file."""
    rule = one(render(), "PrometheusRule")
    path = tmp_path / "celery.rules.yml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return rule["spec"], path


def test_prometheus_rule_holds_the_kubernetes_profile_rules_verbatim(tmp_path, kubernetes_profile):
    spec, _ = extracted_rules(tmp_path)
    assert spec == yaml.safe_load((kubernetes_profile / "celery.rules.yml").read_text())
    cfg = profiles.apply("kubernetes")
    assert {g["interval"] for g in spec["groups"]} == {cfg.evaluation_interval}
    backlog = next(r for g in spec["groups"] for r in g["rules"] if r.get("alert") == "CeleryQueueBacklog")
    assert backlog["for"] == cfg.thresholds.queue_backlog_for
    alerts = [r["alert"] for g in spec["groups"] for r in g["rules"] if "alert" in r]
    assert "CelerySuccessRateLow" in alerts and "Watchdog" in alerts
    # Helm did not eat the alert templates.
    text = json.dumps(spec)
    assert "{{ $labels.name }}" in text and "{{ $value | humanizePercentage }}" in text


@needs_promtool
def test_promtool_checks_the_extracted_groups(tmp_path):
    _, path = extracted_rules(tmp_path)
    result = run("promtool", "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_promtool_unit_tests_pass_on_the_extracted_groups(tmp_path, kubernetes_profile):
    _, path = extracted_rules(tmp_path)
    rule_tests = sorted((kubernetes_profile / "tests").glob("*.test.yml"))
    assert rule_tests
    copies = []
    for test in rule_tests:
        doc = yaml.safe_load(test.read_text())
        doc["rule_files"] = [path.name]
        copy = tmp_path / test.name
        copy.write_text(yaml.safe_dump(doc, sort_keys=False))
        copies.append(copy.name)
    result = run("promtool", "test", "rules", *copies, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


@needs_promtool
def test_promtool_tests_fail_when_the_rules_change(tmp_path, kubernetes_profile):
    """The cases really exercise the extracted file: raising a threshold makes them fail."""
    spec, path = extracted_rules(tmp_path)
    for g in spec["groups"]:
        for r in g["rules"]:
            if r.get("alert") == "CeleryQueueBacklog":
                r["expr"] = r["expr"].replace(f"> {CFG.thresholds.queue_backlog_max}", "> 100000")
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    test = kubernetes_profile / "tests" / "queue.test.yml"
    doc = yaml.safe_load(test.read_text())
    doc["rule_files"] = [path.name]
    (tmp_path / test.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    assert run("promtool", "test", "rules", test.name, cwd=tmp_path).returncode != 0


def _configmaps(values):
    return {d["metadata"]["name"]: d for d in of_kind(render(values), "ConfigMap") if "-dashboard-" in d["metadata"]["name"]}


def test_each_dashboard_configmap_is_the_generated_dashboard():
    generated = dashboards.build_all(chart_gen.config())
    cms = _configmaps({})
    assert len(cms) == len(generated)
    for cm in cms.values():
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        (name, text), = cm["data"].items()
        assert text == generated[name], name


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
    generated = dashboards.build_all(chart_gen.config())
    cms = _configmaps(FEATURES["datasource"])
    for cm in cms.values():
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Celery"}
        (name, text), = cm["data"].items()
        got, want = json.loads(text), json.loads(generated[name])
        assert got != want
        assert got == _with_uid(want, "my-prom"), name


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
