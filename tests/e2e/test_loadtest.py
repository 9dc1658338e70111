"""`python -m loadtest` against the live stack: short loads only (seconds, at most 300 tasks)."""

import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.stack

ROOT = pathlib.Path(__file__).resolve().parents[2]


def loadtest(*argv, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "loadtest", *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_burst_finishes_every_task_and_writes_json(stack, tmp_path):
    out = tmp_path / "burst.json"
    r = loadtest("burst", "--timeout", "1", "--wait-timeout", "60", "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(out.read_text())
    assert (s["scenario"], s["planned"], s["submitted"], s["requests"]) == ("burst", 20, 20, 1)
    assert (s["succeeded"], s["failed"], s["lost"], s["api_errors"]) == (20, 0, 0, {})
    # 20 one-second tasks on 3 workers x 2 processes: at least 4 rounds, not 20 in sequence.
    assert 1 <= s["latency_seconds"]["p50"] <= s["latency_seconds"]["p95"] <= s["latency_seconds"]["p99"] < 20
    assert s["throughput"] > 1
    assert s["alerts_error"] is None and "Watchdog" in s["alerts_firing"]  # always firing: Prometheus answered
    assert s["exit_code"] == 0
    assert "20 succeeded" in r.stdout and "Watchdog" in r.stdout  # the same summary as a table


def test_failures_reports_the_exact_count_and_exception(stack, tmp_path):
    out = tmp_path / "f.json"
    r = loadtest("failures", "--count", "20", "--rate", "20", "--timeout", "0.1", "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr  # tasks failing on purpose is not a loadtest failure
    s = json.loads(out.read_text())
    assert (s["succeeded"], s["failed"]) == (16, 4)
    assert s["failures_by_exception"] == {"SimulatedTaskError": 4}
    assert "SimulatedTaskError: 4" in r.stdout


@pytest.mark.heavy
def test_steady_50_per_second_is_within_5_percent(stack, tmp_path):
    out = tmp_path / "steady.json"
    r = loadtest("steady", "--rate", "50", "--duration", "6", "--timeout", "0", "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(out.read_text())
    assert s["submitted"] == 300 and s["succeeded"] == 300
    assert s["achieved_rate"] == pytest.approx(50, rel=0.05)
    assert s["submit_seconds"] == pytest.approx(6, rel=0.05)


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--rate", "-5"], "--rate"),
        (["nope"], "nope"),
        (["--url", "http://127.0.0.1:1"], "http://127.0.0.1:1"),
    ],
)
def test_bad_options_exit_2_with_one_line(stack, argv, named):
    r = loadtest(*argv, timeout=30)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and named in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_prometheus_unreachable_is_reported_not_fatal(stack, tmp_path):
    out = tmp_path / "p.json"
    r = loadtest("steady", "--count", "2", "--timeout", "0", "--prometheus", "http://127.0.0.1:1", "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(out.read_text())
    assert s["alerts_firing"] is None and "Prometheus at http://127.0.0.1:1" in s["alerts_error"]
    assert "did not answer" in r.stdout


def test_sigint_stops_submitting_and_prints_the_summary(stack, tmp_path):
    out = tmp_path / "int.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtest",
            "steady",
            "--rate",
            "10",
            "--duration",
            "60",
            "--timeout",
            "0",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "interrupted" in stdout
    s = json.loads(out.read_text())
    assert s["interrupted"] and 5 <= s["submitted"] < 100  # stopped after ~3 s of 60
    assert s["succeeded"] == s["submitted"]  # the brief grace let the submitted ones finish
