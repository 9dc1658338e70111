"""The celery-exporter launcher's options: help, and one-line errors (exit 2) for bad values.

The launcher runs in the exporter's own virtualenv (.venv-exporter: its package `src`, another
prometheus-client), so these tests run it there as a subprocess, as native mode does. None of them
reaches a broker: every case ends while the options are parsed.
"""

import os
import subprocess

import pytest

from native import paths

LAUNCHER = paths.REPO / "exporter" / "run_exporter.py"
PYTHON = paths.EXPORTER_VENV_BIN / "python"
EVENT_QUEUE = {"EVENT_QUEUE_TTL": "60", "EVENT_QUEUE_EXPIRES": "120"}
# A broker nothing listens on: a case that got past option parsing would fail differently.
BROKER = "--broker-url=amqp://guest:guest@127.0.0.1:1//"


def launch(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CE_", "EVENT_QUEUE_"))}
    return subprocess.run(
        [str(PYTHON), str(LAUNCHER), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        cwd=paths.REPO,
    )


def assert_one_line_error(result, *words):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and not result.stdout
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_help_lists_the_new_options_with_the_exporters_own():
    result = launch("--help")
    assert result.returncode == 0, result.stderr
    for text in (
        "--queue-metrics-interval",
        "CE_QUEUE_METRICS_INTERVAL",
        "--per-worker-task-metrics",
        "--no-per-worker-task-metrics",
        "CE_PER_WORKER_TASK_METRICS",
        "--broker-url",
        "--queues",
        "--retry-interval",
    ):
        assert text in result.stdout, text


def test_help_needs_no_event_queue_variables():
    assert launch("--help").returncode == 0


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "", "10s"])
def test_bad_interval_option(value):
    line = assert_one_line_error(
        launch(BROKER, f"--queue-metrics-interval={value}", **EVENT_QUEUE), "--queue-metrics-interval", repr(value)
    )
    assert "positive number of seconds" in line


@pytest.mark.parametrize("value", ["abc", "-1", "0"])
def test_bad_interval_from_the_environment_names_the_variable(value):
    assert_one_line_error(
        launch(BROKER, CE_QUEUE_METRICS_INTERVAL=value, **EVENT_QUEUE),
        "--queue-metrics-interval",
        "CE_QUEUE_METRICS_INTERVAL",
        repr(value),
    )


def test_bad_per_worker_switch_from_the_environment():
    assert_one_line_error(
        launch(BROKER, CE_PER_WORKER_TASK_METRICS="maybe", **EVENT_QUEUE),
        "--per-worker-task-metrics",
        "CE_PER_WORKER_TASK_METRICS",
        "'maybe'",
    )


def test_the_exporters_own_options_fail_the_same_way():
    assert_one_line_error(launch(BROKER, "--port=abc", **EVENT_QUEUE), "--port", "'abc'")
    assert_one_line_error(launch(BROKER, CE_PORT="abc", **EVENT_QUEUE), "--port", "CE_PORT", "'abc'")
    assert_one_line_error(launch(BROKER, "--no-such-option", **EVENT_QUEUE), "--no-such-option")
    assert_one_line_error(launch(**EVENT_QUEUE), "--broker-url")


@pytest.mark.parametrize("name", ["EVENT_QUEUE_TTL", "EVENT_QUEUE_EXPIRES"])
def test_missing_event_queue_variable(name):
    env = {k: v for k, v in EVENT_QUEUE.items() if k != name}
    assert_one_line_error(launch(BROKER, **env), name)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "inf"])
def test_bad_event_queue_ttl(value):
    assert_one_line_error(launch(BROKER, **{**EVENT_QUEUE, "EVENT_QUEUE_TTL": value}), "EVENT_QUEUE_TTL", repr(value))


def test_good_values_pass_the_option_checks():
    # Valid interval and switch: parsing goes on to the next check (the event queue variables),
    # which then names its own problem, not these options.
    for args, env in (
        (["--queue-metrics-interval=0.5", "--per-worker-task-metrics"], {}),
        (["--no-per-worker-task-metrics"], {"CE_QUEUE_METRICS_INTERVAL": "30"}),
        ([], {"CE_PER_WORKER_TASK_METRICS": "true"}),
    ):
        line = assert_one_line_error(launch(BROKER, *args, **env), "EVENT_QUEUE_TTL")
        assert "queue-metrics-interval" not in line and "per-worker" not in line


KEPT_CHILDREN = """
import sys
sys.path.insert(0, "exporter")
import run_exporter
from prometheus_client import CollectorRegistry

registry = CollectorRegistry()
counter = run_exporter._TaskCounter("t_total", "tasks", ["name", "queue_name"], registry=registry)
def value():
    return registry.get_sample_value("t_total", {"name": "a", "queue_name": "q"})
for host in ("w1", "w2", "w1"):
    counter.labels(name="a", hostname=host, queue_name="q").inc()
print(value())
counter.remove("a", "q")
counter.labels(name="a", hostname="w3", queue_name="q").inc()
print(value())
counter.clear()
counter.labels(name="a", hostname="w3", queue_name="q").inc(0)
print(value())
"""


def test_task_counters_drop_the_hostname_and_start_again_once_removed():
    """The launcher keeps each task counter's children by label values (one lookup per event);
    a series removed or cleared starts again from 0 rather than from the child kept before."""
    result = subprocess.run(
        [str(PYTHON), "-c", KEPT_CHILDREN], capture_output=True, text=True, timeout=60, cwd=paths.REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3.0", "1.0", "0.0"]
