"""Numeric worker settings: an empty value means the default, a bad one stops the import with a line
naming the variable and the value."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CODE = "import worker.settings as s; print(s.WORKER_CONCURRENCY, s.MAX_TIMEOUT_SECONDS, s.VISIBILITY_TIMEOUT)"


def _import(**env):
    clean = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60, cwd=REPO, env={**clean, **env}
    )


def test_empty_numbers_take_their_defaults():
    r = _import(WORKER_CONCURRENCY="", MAX_TIMEOUT_SECONDS="", VISIBILITY_TIMEOUT="")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "600.0", "660.0"]


def test_set_numbers_are_read():
    r = _import(WORKER_CONCURRENCY="4", MAX_TIMEOUT_SECONDS="30")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["4", "30.0", "90.0"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WORKER_CONCURRENCY", "two", "WORKER_CONCURRENCY must be a whole number, got 'two'"),
        ("WORKER_CONCURRENCY", "2.5", "WORKER_CONCURRENCY must be a whole number, got '2.5'"),
        ("MAX_TIMEOUT_SECONDS", "10m", "MAX_TIMEOUT_SECONDS must be a number, got '10m'"),
        ("WORKER_MAX_TASKS_PER_CHILD", "many", "WORKER_MAX_TASKS_PER_CHILD must be a whole number, got 'many'"),
    ],
)
def test_a_bad_number_is_refused_naming_the_variable(name, value, message):
    r = _import(**{name: value})
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1] == f"ValueError: {message}"
