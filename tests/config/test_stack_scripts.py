"""`make up` before any engine runs: which path it takes, the .env it writes or completes, the
commands of the Docker path (its dry run), and the Python check of the native path.

Each test runs the real Makefile and scripts in a copy of the repository's top level, with a PATH
that holds only the tools named in tests/config/conftest.py's TOOLS: no Python, and no docker unless
a test adds it.
"""

import re
import shutil
import stat
import subprocess
import sys

import pytest

from native import dotenv
from native.ports import PORTS
from tests import compose_cli

REPO = compose_cli.REPO
HEX_SECRET = re.compile(r"[0-9a-f]{48}")
OLD_ENV = (
    "# an .env from before the Alertmanager secrets and the host ports existed\n"
    "RMQ_USER=olduser\n"
    "RMQ_PASSWORD=old-password-1\n"
    "GRAFANA_ADMIN_PASSWORD=old-grafana-2\n"
    "FLASK_SECRET_KEY=old-flask-3\n"
    "BIND_ADDRESS=0.0.0.0\n"
    "HOST_PORT_APP=18080"  # no newline at the end
)


@pytest.fixture
def checkout(tmp_path):
    """A copy of what `make up` reads: Makefile, scripts/, .env.example and the compose files."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ["Makefile", ".env.example", *[p.name for p in REPO.glob("compose*.yaml")]]:
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "scripts", root / "scripts")
    return root


def run(cmd, cwd, path, **env):
    environ = {"PATH": str(path), "HOME": str(cwd)}
    environ.update({k: str(v) for k, v in env.items()})
    return subprocess.run(cmd, cwd=cwd, env=environ, capture_output=True, text=True, timeout=120, check=False)


def commands(stdout):
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


# --- the dry run of the Docker path -----------------------------------------------------------


def test_dry_run_prints_the_commands_in_order_and_writes_nothing(checkout, bare_path):
    result = run(["make", "up"], checkout, bare_path, MODE="docker", DRY_RUN=1, WORKERS=3)
    assert result.returncode == 0, result.stderr
    assert commands(result.stdout) == [
        "docker info",
        "docker compose version --short",
        "docker compose -f compose.yaml up -d --build --scale celery_worker=3 --wait",
    ]
    assert not (checkout / ".env").exists(), "a dry run must not write .env"
    # The .env it would write: every key of .env.example, secrets hidden.
    for key in compose_cli.read_env_file(checkout / ".env.example"):
        assert re.search(rf"^    {key}=", result.stdout, re.M), f"{key} missing from the dry run's .env"
    assert "RMQ_PASSWORD=<secret, 48 characters>" in result.stdout
    assert not HEX_SECRET.search(result.stdout), "the dry run must not print secrets"
    # ...and the URLs table the Docker branch prints.
    for url in (
        f"http://localhost:{PORTS['app']}",
        f"http://localhost:{PORTS['flower']}",
        f"http://localhost:{PORTS['grafana']}",
        f"http://localhost:{PORTS['worker_metrics']}/metrics",
        f"http://localhost:{PORTS['celery_exporter']}/metrics",
    ):
        assert url in result.stdout


def test_dry_run_production_profile(checkout, bare_path):
    result = run(["make", "up"], checkout, bare_path, MODE="docker", DRY_RUN=1, PROFILE="production")
    assert result.returncode == 0, result.stderr
    assert commands(result.stdout)[-1] == (
        "docker compose -f compose.yaml -f compose.production.yaml up -d --build --scale celery_worker=1 --wait"
    )


def test_dry_run_shows_an_old_env_completed_and_changes_nothing(checkout, bare_path):
    (checkout / ".env").write_text(OLD_ENV)
    result = run(["make", "up"], checkout, bare_path, MODE="docker", DRY_RUN=1)
    assert result.returncode == 0, result.stderr
    assert (checkout / ".env").read_text() == OLD_ENV
    shown = result.stdout
    assert "    RMQ_USER=olduser\n" in shown and "    BIND_ADDRESS=0.0.0.0\n" in shown
    assert "    HOST_PORT_APP=18080\n" in shown
    added = re.search(r"these keys would be added from \.env\.example: ([A-Z_ ]+)", shown).group(1).split()
    assert {"SLACK_API_URL", "SMTP_PASSWORD", "HOST_PORT_GRAFANA", "FLOWER_PASSWORD"} <= set(added)
    assert not {"RMQ_USER", "RMQ_PASSWORD", "BIND_ADDRESS", "HOST_PORT_APP"} & set(added)
    # The URLs table uses the .env's address and ports.
    assert "http://localhost:18080" in shown


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("WORKERS", "three", "WORKERS must be a whole number between 1 and 16, got 'three'"),
        ("WORKERS", "17", "WORKERS must be between 1 and 16, got '17'"),
        ("PROFILE", "prod", "PROFILE must be dev or production, got 'prod'"),
        ("MODE", "podman", "MODE must be auto, docker or native, got 'podman'"),
    ],
)
def test_bad_settings_are_named(checkout, bare_path, setting, value, message):
    env = {"MODE": "docker", "DRY_RUN": 1, setting: value}
    result = run(["make", "up"], checkout, bare_path, **env)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr and not commands(result.stdout)


def test_dry_run_is_for_the_docker_path_only(checkout, bare_path):
    result = run(["make", "up"], checkout, bare_path, MODE="native", DRY_RUN=1)
    assert result.returncode != 0 and "DRY_RUN covers the Docker path" in result.stdout
    assert not (checkout / ".venv").exists()


FAKE_DOCKER = """#!/bin/sh
# A docker CLI whose daemon answers: logs each call, prints what the test asks for.
printf '%s\\n' "$*" >> "$DOCKER_LOG"
case "$1 $2" in
    "compose version") printf '%s\\n' "$COMPOSE_VERSION" ;;
    "ps -q") printf '%s' "$RUNNING" ;;
esac
exit 0
"""


@pytest.fixture
def fake_docker(bare_path, tmp_path):
    script = bare_path / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(0o755)
    return tmp_path / "docker.log"


def docker_calls(log):
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("broker", ["", "redis"])
def test_down_stops_every_service_of_the_project_whichever_broker(checkout, bare_path, broker):
    result = run(["make", "down"], checkout, bare_path, MODE="docker", DRY_RUN=1, BROKER=broker)
    assert result.returncode == 0, result.stderr
    # compose.yaml alone plus --remove-orphans: the Redis broker's services of compose.redis.yaml
    # are orphans of compose.yaml, so a `make down` without BROKER=redis stops them too.
    assert commands(result.stdout) == ["docker compose -f compose.yaml down --remove-orphans"]


def compose_version_needed(path):
    return re.search(r"^# Needs Docker Compose ([0-9.]+) or later", (REPO / path).read_text(), re.M).group(1)


def test_each_compose_file_states_the_compose_version_of_its_features():
    def version(text):
        return tuple(int(x) for x in text.split("."))

    for path in [p.name for p in REPO.glob("compose*.yaml")]:
        text = (REPO / path).read_text()
        if "content: |" in text:  # inline configs
            assert version(compose_version_needed(path)) >= (2, 23, 1), path
        if "!override" in text or "!reset" in text:
            assert version(compose_version_needed(path)) >= (2, 24, 4), path
    base, redis = compose_version_needed("compose.yaml"), compose_version_needed("compose.redis.yaml")
    readme = (REPO / "README.md").read_text()
    assert f"Compose {base} or later ({redis}" in " ".join(readme.split()), "README.md states other versions"


@pytest.mark.parametrize(
    "broker, version, ok",
    [("", "2.23.1", True), ("redis", "2.24.0", False), ("redis", "v2.24.4", True), ("", "2.20.0", False)],
)
def test_up_checks_the_compose_version_the_files_in_use_need(checkout, bare_path, fake_docker, broker, version, ok):
    result = run(
        ["make", "up"],
        checkout,
        bare_path,
        MODE="docker",
        BROKER=broker,
        COMPOSE_VERSION=version,
        DOCKER_LOG=fake_docker,
    )
    files = "compose.yaml + compose.redis.yaml" if broker else "compose.yaml"
    needed = compose_version_needed("compose.redis.yaml" if broker else "compose.yaml")
    if ok:
        assert result.returncode == 0, result.stderr
        assert any(" up -d --build" in call for call in docker_calls(fake_docker))
    else:
        assert result.returncode != 0
        verb = "need" if broker else "needs"
        assert f"Docker Compose {version} is too old: {files} {verb} {needed} or later" in result.stderr
        assert not any(" up -d" in call for call in docker_calls(fake_docker))


def test_make_test_says_in_one_line_to_stop_a_running_compose_stack(checkout, bare_path, fake_docker):
    result = run(["make", "test"], checkout, bare_path, RUNNING="0123abcd\n", DOCKER_LOG=fake_docker)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "run `make down` first" in errors[0], result.stderr
    assert "installing Debian packages" not in result.stdout + result.stderr
    assert "ps -q --filter label=com.docker.compose.project=celery-bundle" in docker_calls(fake_docker)
    # Nothing running: the guard lets `make test` go on.
    result = run(["sh", "scripts/compose_stack.sh", "test-guard"], checkout, bare_path, DOCKER_LOG=fake_docker)
    assert result.returncode == 0, result.stderr


# --- .env: created, or completed without changing a value ----------------------------------


def shell_env(checkout, bare_path):
    result = run(["sh", "scripts/compose_stack.sh", "env"], checkout, bare_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def native_env(checkout, bare_path):
    messages = []
    dotenv.ensure(messages.append, example=checkout / ".env.example", dest=checkout / ".env")
    return "\n".join(messages)


@pytest.mark.parametrize("ensure", [shell_env, native_env], ids=["docker-path-sh", "native-python"])
def test_first_run_writes_env_with_random_secrets(checkout, bare_path, ensure):
    ensure(checkout, bare_path)
    env_file = checkout / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = compose_cli.read_env_file(env_file)
    assert set(values) == set(compose_cli.read_env_file(checkout / ".env.example"))
    assert "change-me" not in values.values()
    secrets = [values[k] for k in ("RMQ_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "FLASK_SECRET_KEY", "FLOWER_PASSWORD")]
    assert len(set(secrets)) == 4 and all(len(s) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in secrets)
    # Compose accepts it as it is.
    assert compose_cli.config(["compose.yaml"], env_file, project_directory=checkout).returncode == 0
    before = env_file.read_text()
    ensure(checkout, bare_path)
    assert env_file.read_text() == before, "a second run must change nothing"


@pytest.mark.parametrize("ensure", [shell_env, native_env], ids=["docker-path-sh", "native-python"])
def test_old_env_gets_missing_keys_and_keeps_its_values(checkout, bare_path, ensure):
    env_file = checkout / ".env"
    env_file.write_text(OLD_ENV)
    env_file.chmod(0o640)
    ensure(checkout, bare_path)
    text = env_file.read_text()
    assert text.startswith(OLD_ENV + "\n"), "existing lines must stay exactly as they were"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o640, "the file's mode must stay"
    values = compose_cli.read_env_file(env_file)
    assert values["RMQ_USER"] == "olduser" and values["RMQ_PASSWORD"] == "old-password-1"
    assert values["BIND_ADDRESS"] == "0.0.0.0" and values["HOST_PORT_APP"] == "18080"
    assert values["SLACK_API_URL"] == "" and values["SMTP_PASSWORD"] == ""
    assert values["HOST_PORT_GRAFANA"] == str(PORTS["grafana"]) and re.fullmatch(
        r"[A-Za-z0-9_-]{32,}", values["FLOWER_PASSWORD"]
    )
    assert set(values) == set(compose_cli.read_env_file(checkout / ".env.example")) | {"HOST_PORT_APP"}
    for key in values:
        assert len(re.findall(rf"^{key}=", text, re.M)) == 1, f"{key} written twice"
    model = compose_cli.config(["compose.yaml", "compose.production.yaml"], env_file, project_directory=checkout).model
    assert model["services"]["app"]["environment"]["RMQ_URL"] == "amqp://olduser:old-password-1@rabbitmq:5672//"
    assert {p["published"] for p in model["services"]["app"]["ports"]} == {"18080"}
    before = env_file.read_text()
    ensure(checkout, bare_path)
    assert env_file.read_text() == before


# --- which path `make up` takes --------------------------------------------------------------


def test_without_docker_the_native_path_is_taken(checkout, bare_path):
    result = run(["sh", "scripts/compose_stack.sh", "mode"], checkout, bare_path)
    assert result.returncode == 0 and result.stdout.strip() == "native"


def test_unreachable_daemon_stops_make_up_with_the_reason(checkout, bare_path):
    docker = shutil.which("docker")
    if not docker:
        reason = "no docker CLI on this machine: the 'CLI without daemon' case cannot be set up"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    if subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode == 0:
        reason = "a Docker daemon answers here: the 'CLI without daemon' case cannot be set up"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    (bare_path / "docker").symlink_to(docker)
    result = run(["make", "up"], checkout, bare_path)
    assert result.returncode != 0
    assert "docker CLI is installed but its daemon does not answer" in result.stderr
    assert "MODE=native make up" in result.stderr
    # Nothing else happened: no native mode, no apt-get, no virtualenv, no .env.
    assert "installing Debian packages" not in result.stdout + result.stderr
    assert not (checkout / ".venv").exists() and not (checkout / ".env").exists()
    # Stopping or looking needs no daemon: no compose stack can run where none answers.
    result = run(["sh", "scripts/compose_stack.sh", "mode", "down"], checkout, bare_path)
    assert result.returncode == 0 and result.stdout.strip() == "native"


# --- native path: Python 3.11/3.12 first -----------------------------------------------------


def test_native_path_without_suitable_python_says_so_first(checkout, bare_path):
    result = run(["make", "up"], checkout, bare_path, MODE="native")
    assert result.returncode != 0
    assert "need Python 3.11 or 3.12 with its venv module" in result.stderr
    assert "apt-get install python3.11 python3.11-venv" in result.stderr
    assert "installing Debian packages" not in result.stdout + result.stderr
    assert not (checkout / ".venv").exists() and not (checkout / ".env").exists()


def test_find_python_rejects_what_is_not_python_3_11_or_3_12(checkout, bare_path):
    # `sh` is no Python at all; PYTHON names it, as a user would name a wrong interpreter.
    result = run(["sh", "scripts/find_python.sh"], checkout, bare_path, PYTHON=bare_path / "sh")
    assert result.returncode == 1 and "found only:" in result.stderr and str(bare_path / "sh") in result.stderr


def test_find_python_accepts_this_interpreter(checkout, bare_path):
    if sys.version_info[:2] not in ((3, 11), (3, 12)):
        pytest.skip(f"the tests run on Python {sys.version_info[:2]}")
    (bare_path / "python3").symlink_to(sys.executable)
    result = run(["sh", "scripts/find_python.sh"], checkout, bare_path)
    assert result.returncode == 0 and result.stdout.strip() == str(bare_path / "python3")


# --- Debian packages: their services must not start -------------------------------------------


def test_install_script_forbids_service_starts_while_installing():
    script = (REPO / "native" / "install_debian_packages.sh").read_text()
    policy = re.search(r"printf '(#!/bin/sh.*?)' \\\n\s*\| \$SUDO tee \"\$POLICY\"", script, re.S)
    assert policy, "the script must write /usr/sbin/policy-rc.d"
    assert "POLICY=/usr/sbin/policy-rc.d" in script
    body = policy.group(1).encode().decode("unicode_escape")
    # The policy itself answers 101 ("action forbidden") to invoke-rc.d / deb-systemd-invoke.
    proc = subprocess.run(["sh", "-c", body, "policy-rc.d", "rabbitmq-server", "start"], check=False)
    assert proc.returncode == 101
    order = [script.index(s) for s in ('tee "$POLICY"', "apt-get install", "\nremove_policy\n")]
    assert order == sorted(order), "policy-rc.d must exist during apt-get install and go away after"
    assert "trap remove_policy EXIT" in script
    assert "systemctl disable --now" in script
