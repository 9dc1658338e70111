"""Hand-written promtool cases (tests/k8s/promtool/*.test.yml, literal series and labels) run
against the rules the chart renders for a scenario of the matrix, extracted from its PrometheusRule:
several namespaces and clusters, components split over namespaces, Flower off, worker metrics off,
Redis. Each case asserts every firing alert (`ALERTS{alertstate="firing"}`), so an alert that fires
where it should not fails it too. Some are also run against rules that should fail them, to show
they can."""

import shutil

import pytest

from mixin import chart as chart_gen
from mixin import rules
from mixin.config import build
from tests.k8s.chart import REPO, rule_spec, run, scenario_docs, write_rules

HERE = REPO / "tests" / "k8s" / "promtool"
# Test file -> the scenario (tests/k8s/chart.py SCENARIOS) whose rules it runs against.
CASES = {
    "namespaces": "team-a",
    "clusters": "rabbitmq-keda",
    "split-namespaces": "split-namespaces",
    "flower-disabled": "no-flower",
    "no-worker-metrics": "no-worker-metrics",
    "redis": "redis",
}

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")


def promtool_test(name, spec, tmp_path):
    write_rules(spec, tmp_path / "rules.yml")
    shutil.copy(HERE / f"{name}.test.yml", tmp_path)
    return run("promtool", "test", "rules", f"{name}.test.yml", cwd=tmp_path)


def test_every_case_file_runs():
    assert {p.name.removesuffix(".test.yml") for p in HERE.glob("*.test.yml")} == set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_case_passes_on_the_rules_the_chart_renders(name, tmp_path):
    result = promtool_test(name, rule_spec(scenario_docs(CASES[name])), tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def namespace_joined(key):
    """The chart's rules as they were joined before: on (cluster, namespace), no release label."""
    cfg = build(
        {"labels": {"deployment": None}, "alerts": {"Watchdog": {"enabled": False}}}, base=chart_gen.variants()[key]
    )
    return rules.build(cfg)


@pytest.mark.parametrize(
    "name, key, fires",
    [
        # Workers in apps, monitors in celery: "no worker online", and the loss goes unseen.
        (
            "split-namespaces",
            "broker=rabbitmq,exporter=true,flower=true,workers=true",
            'alertname="CeleryNoWorkerOnline"',
        ),
        # RabbitMQ in broker, the HPA in celery: the backlog pages in eu while KEDA still scales there.
        ("clusters", "broker=rabbitmq,exporter=true,flower=true,workers=true", 'cluster="eu"'),
    ],
)
def test_cases_fail_on_rules_joined_on_the_namespace(name, key, fires, tmp_path):
    result = promtool_test(name, namespace_joined(key), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and fires in output, output[-3000:]


def test_worker_metrics_case_fails_on_the_rules_that_read_worker_metrics(tmp_path):
    """Without the PodMonitor's rules filtered out, healthy traffic would page "no worker online"."""
    result = promtool_test("no-worker-metrics", rule_spec(scenario_docs("defaults")), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert 'alertname="CeleryNoWorkerOnline"' in output and 'job="celery_worker"' in output, output[-3000:]
