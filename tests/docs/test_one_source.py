"""One source of truth: a threshold changed in mixin/config.py moves every artefact and document.

The generated blocks of the docs (README alert and threshold tables, the guides' threshold tables,
each runbook's "fires when" line) are what `python -m mixin` writes. Changing thresholds in a copy
of the repository and regenerating leaves the quick test loop green there, and no document states
an old value any more.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mixin import docs

REPO = Path(__file__).resolve().parents[2]
# Changed knobs and the way a document would state their old values.
CHANGES = {
    '"success_ratio_min": 0.95': ('"success_ratio_min": 0.9', re.compile(r"(?<![\w.])95 ?%")),
    '"worker_cpu_ratio_max": 0.80': ('"worker_cpu_ratio_max": 0.75', re.compile(r"(?<![\w.])80 ?%")),
    '"worker_memory_growth_bytes_per_s": 1024 * 1024 / 60': (
        '"worker_memory_growth_bytes_per_s": 2 * 1024 * 1024 / 60', re.compile(r"(?<![\w.])1 MiB")),
}


def documents(root):
    paths = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return {p.relative_to(root): p.read_text() for p in paths}


def test_generated_blocks_are_what_the_mixin_writes():
    stale = [str(p.relative_to(REPO)) for p, text in docs.rendered().items() if p.read_text() != text]
    assert not stale, f"run `python -m mixin`: {stale} drifted"


def test_every_runbook_and_the_readme_have_their_generated_blocks():
    for path, blocks in docs.documents().items():
        for name in blocks:
            assert f"<!-- BEGIN GENERATED {name}:" in path.read_text(), f"{path.name} lacks block {name}"


@pytest.fixture(scope="module")
def changed_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    config = root / "mixin" / "config.py"
    text = config.read_text()
    for old, (new, _) in CHANGES.items():
        assert old in text, f"mixin/config.py no longer holds {old}: update this test"
        text = text.replace(old, new)
    config.write_text(text)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-m", "mixin"], cwd=root, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return root, env


def test_after_a_change_no_document_states_an_old_value(changed_copy):
    root, _ = changed_copy
    found = [f"{path}: {pattern.pattern} in {m.group(0)!r}"
             for path, text in documents(root).items() if not str(path).startswith("docs/performance")
             for _, (_, pattern) in CHANGES.items() for m in pattern.finditer(text)]
    assert not found, "documents still state old values:\n" + "\n".join(found)
    scenarios = subprocess.run([sys.executable, "-m", "loadtest", "--help"], cwd=root, capture_output=True, text=True)
    assert "90%" not in scenarios.stdout or "95%" not in scenarios.stdout


def test_after_a_change_the_quick_test_loop_passes_there(changed_copy):
    root, env = changed_copy
    where = subprocess.run([sys.executable, "-c", "import mixin; print(mixin.__file__)"], cwd=root,
                           capture_output=True, text=True, env=env).stdout
    assert where.startswith(str(root)), f"the copy imports another mixin: {where}"
    # What `make test-fast` runs, in the copy.
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                             "tests/unit", "tests/config"], cwd=root, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
