"""Static checks that tests cannot replace: ruff's lint rules and format (configured in
pyproject.toml), and shellcheck on every shell script."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    str(p.relative_to(REPO)) for p in [*REPO.glob("scripts/*.sh"), *REPO.glob("native/*.sh"), REPO / ".ci" / "run"]
)


def run(*argv):
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ruff_finds_nothing():
    result = run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_code_is_formatted():
    result = run(sys.executable, "-m", "ruff", "format", "--no-cache", "--check", ".")
    assert result.returncode == 0, f"run `.venv/bin/ruff format .`:\n{result.stdout[-4000:]}"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck missing: run `make deps`")
def test_shellcheck_finds_nothing():
    assert SCRIPTS and ".ci/run" in SCRIPTS
    result = run("shellcheck", *SCRIPTS)
    assert result.returncode == 0, result.stdout[-4000:]
