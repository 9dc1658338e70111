"""Shared by the checks of the Docker path's scripts (test_stack_scripts.py, test_dotenv_readers.py)."""

import shutil

import pytest

# What the Docker path may use besides docker itself: make, a POSIX shell and core utilities.
TOOLS = [
    "make",
    "sh",
    "bash",
    "od",
    "tr",
    "grep",
    "sed",
    "awk",
    "mv",
    "tail",
    "head",
    "sort",
    "dirname",
    "cat",
    "printf",
]


@pytest.fixture
def bare_path(tmp_path):
    """A PATH directory with TOOLS only (no python, no docker)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    return bindir
