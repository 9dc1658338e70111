"""What ships: `pip install .` (pyproject's packages) and the image (Dockerfile, .dockerignore) carry
the code the containers run and nothing else. No shipped module is a test rig or a tool, imports one,
or needs a dependency only the [test] extra installs; the image copies no test or tool folder.
Read from the files themselves (no build), so it takes milliseconds.
"""

import ast
import re
import sys
import tomllib
from importlib import metadata

import yaml

from tests.compose_cli import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGES = PYPROJECT["tool"]["setuptools"]["packages"]
TOP_LEVEL = {p.split(".")[0] for p in PACKAGES}
# This repository's own import names: every top-level folder with an __init__.py.
FIRST_PARTY = {p.parent.name for p in REPO.glob("*/__init__.py")}
# Test rigs and developer tools: never shipped.
HARNESS = {"tests", "tools"}
# What the image holds besides the packages: its build file and the runbooks the app serves.
IMAGE_EXTRAS = {"pyproject.toml", "docs/runbooks"}


def names(requirements):
    return {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower().replace("_", "-") for r in requirements}


RUNTIME = names(PYPROJECT["project"]["dependencies"])
TEST_ONLY = names(PYPROJECT["project"]["optional-dependencies"]["test"]) - RUNTIME


def shipped_modules():
    for package in PACKAGES:
        yield from sorted((REPO / package.replace(".", "/")).rglob("*.py"))


def imported(path):
    """Top-level names of the absolute imports of a module."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def test_the_packages_are_product_code():
    assert TOP_LEVEL and not TOP_LEVEL & HARNESS
    for package in PACKAGES:
        assert (REPO / package.replace(".", "/") / "__init__.py").exists(), f"{package} is not a package here"


def test_no_shipped_module_needs_a_test_rig_a_tool_or_a_test_dependency():
    distributions = metadata.packages_distributions()
    problems = []
    for path in shipped_modules():
        where = path.relative_to(REPO)
        for name in set(imported(path)):
            if name in FIRST_PARTY:
                if name not in TOP_LEVEL:
                    problems.append(f"{where} imports {name}, which is not shipped")
            elif name not in sys.stdlib_module_names:
                dists = names(distributions.get(name, [name]))
                if dists & TEST_ONLY or name in ("pytest", "playwright", "aiosmtpd", "hypothesis"):
                    problems.append(f"{where} imports {name} ({', '.join(sorted(dists))}: the [test] extra only)")
    assert not problems, "\n".join(problems)


def test_the_image_runs_only_shipped_code():
    # The services built from the Dockerfile name their modules in their commands.
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    image = services["app"]["image"]
    commands = [" ".join(s["command"]) for s in services.values() if s.get("image") == image]
    assert len(commands) == 3  # app, celery_worker, flower
    # Modules (app.wsgi:app, worker.celery_app) and files (app/gunicorn_conf.py), by their package.
    words = " ".join(commands).replace("=", " ").split()
    used = {
        m.group(1) for w in words if (m := re.fullmatch(r"([a-z_]+)(?:/[a-z_]+\.py|(?:\.[a-z_]+)+(?::[a-z_]+)?)", w))
    }
    assert used and used <= TOP_LEVEL, f"the image runs {sorted(used)}, the wheel ships {sorted(TOP_LEVEL)}"


def copied():
    """The sources of the Dockerfile's COPY instructions (none from another build stage)."""
    text = (REPO / "Dockerfile").read_text()
    sources = []
    for line in re.findall(r"^COPY\s+(.+)$", text, re.M):
        words = [w for w in line.split() if not w.startswith("--")]
        assert "--from" not in line, line
        sources += [w.rstrip("/") for w in words[:-1]]
    return sources


def test_the_dockerfile_copies_only_what_ships():
    sources = copied()
    assert set(sources) == TOP_LEVEL | IMAGE_EXTRAS, f"COPY {sources}"
    for source in sources:
        assert source.split("/")[0] not in FIRST_PARTY - TOP_LEVEL, f"COPY {source}: a test, tool or dev folder"


def test_the_build_context_is_what_the_dockerfile_copies():
    # Everything is excluded first, then exactly the copied paths are let in again.
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line[1:].rstrip("/") for line in lines if line.startswith("!")} == set(copied())
