"""Every service's port is written once, in native/ports.py (PORTS), and the files that must name it
agree: compose listens on and publishes those numbers, Prometheus scrapes them, the URLs in the
configs use them, the Helm chart defaults to them, and the app's and the workers' own defaults
(code the image ships without native/) are the same numbers.
"""

import ast
import re

import pytest
import yaml

from mixin.settings_reference import ComposeLoader
from native.ports import PORTS
from tests.compose_cli import REPO

# The ports each compose service listens on inside its container.
SERVICE_PORTS = {
    "app": {PORTS["app"]},
    "flower": {PORTS["flower"]},
    "prometheus": {PORTS["prometheus"]},
    "alertmanager": {PORTS["alertmanager"]},
    "grafana": {PORTS["grafana"]},
    "celery_exporter": {PORTS["celery_exporter"]},
    "rabbitmq": {PORTS["rabbitmq"], PORTS["rabbitmq_management"], PORTS["rabbitmq_prometheus"]},
    "redis": {PORTS["redis"]},
    "celery_worker": {PORTS["worker_metrics"]},
    # compose.redis.yaml: the broker is a Redis of its own container (native mode moves it to
    # PORTS["redis_broker"] because it shares 127.0.0.1 with the results' Redis).
    "redis_broker": {PORTS["redis"]},
    "redis_exporter": {PORTS["redis_exporter"]},
}
COMPOSE_FILES = sorted(REPO.glob("compose*.yaml"))
# URLs and targets that name a compose service: scheme://[user:password@]service:port, service:port.
SERVICE_URL = re.compile(
    r"(?:(?:https?|amqp|redis)://(?:[^@/\s\"']+@)?|[\"'\s\[])(%s):(\d+)(?![\d.])" % "|".join(SERVICE_PORTS)
)
HOST_PORT_DEFAULT = re.compile(r"\$\{(HOST_PORT_[A-Z_]+):-([\d-]+)\}")


def compose_services():
    for path in COMPOSE_FILES:
        for name, service in (yaml.load(path.read_text(), ComposeLoader).get("services") or {}).items():
            yield path.name, name, service


def published(service):
    """(host port default, container port) of each `ports:` entry."""
    for entry in service.get("ports") or []:
        host, target = str(entry).rsplit(":", 1)
        default = HOST_PORT_DEFAULT.search(host)
        yield (default.group(2) if default else host.rsplit(":", 1)[-1]), int(target)


def test_compose_services_listen_where_ports_says():
    seen = set()
    for file, name, service in compose_services():
        ports = {int(p) for p in service.get("expose") or []} | {target for _, target in published(service)}
        if not ports:
            continue  # an override without ports of its own
        seen.add(name)
        assert ports == SERVICE_PORTS[name], (
            f"{file}: {name} listens on {sorted(ports)}, PORTS says {sorted(SERVICE_PORTS[name])}"
        )
    assert seen == set(SERVICE_PORTS)


def test_compose_publishes_each_port_on_the_same_number_by_default():
    env_example = (REPO / ".env.example").read_text()
    for file, name, service in compose_services():
        for default, target in published(service):
            # The worker replicas share a range that starts at their port.
            assert default.split("-")[0] == str(target), f"{file}: {name} publishes {target} on {default}"
    # Every HOST_PORT_* default (ports, external URLs) and .env.example says the same.
    defaults = {}
    for path in COMPOSE_FILES:
        for key, default in HOST_PORT_DEFAULT.findall(path.read_text()):
            assert defaults.setdefault(key, default) == default, (
                f"{path.name}: {key} defaults to {default} and {defaults[key]}"
            )
    for key, default in defaults.items():
        assert re.search(rf"^{key}={default}$", env_example, re.M), f".env.example: {key}={default}"


def test_compose_service_settings_name_their_ports():
    services = {name: s for _, name, s in compose_services() if "expose" in s}
    env = {name: s.get("environment") or {} for name, s in services.items()}
    assert env["celery_worker"]["WORKER_METRICS_PORT"] == str(PORTS["worker_metrics"])
    assert env["flower"]["FLOWER_PORT"] == str(PORTS["flower"])
    assert env["app"]["APP_BIND"] == f"0.0.0.0:{PORTS['app']}"
    assert f"--port={PORTS['celery_exporter']}" in services["celery_exporter"]["command"]
    for name, service in services.items():
        checks = re.findall(r"127\.0\.0\.1:(\d+)", str(service.get("healthcheck", {})))
        assert {int(p) for p in checks} <= SERVICE_PORTS[name], f"{name}'s healthcheck: {checks}"


@pytest.mark.parametrize(
    "path",
    [
        *COMPOSE_FILES,
        REPO / "prometheus" / "prometheus.yml",
        REPO / "prometheus" / "prometheus.redis.yml",
        REPO / "alertmanager" / "alertmanager.yml",
        *sorted((REPO / "grafana" / "provisioning" / "datasources").glob("*.yml")),
    ],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_urls_and_targets_use_each_services_port(path):
    found = SERVICE_URL.findall(path.read_text())
    for service, port in found:
        assert int(port) in SERVICE_PORTS[service], f"{path.name}: {service}:{port}"
    if path.parent.name == "prometheus":
        assert found, "Prometheus scrapes the services by name"


def test_prometheus_finds_the_workers_on_their_port():
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    dns = [sd for job in config["scrape_configs"] for sd in job.get("dns_sd_configs", [])]
    assert dns and all(sd["port"] == PORTS["worker_metrics"] for sd in dns)


def test_the_charts_defaults_are_the_same_ports():
    chart = REPO / "charts" / "celery-observability"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    assert values["flower"]["port"] == PORTS["flower"]
    exporter = (chart / "templates" / "exporter.yaml").read_text()
    numbers = re.findall(r"(?:--port=|containerPort: |\bport: )(\d+)", exporter)
    assert numbers and {int(n) for n in numbers} == {PORTS["celery_exporter"]}


def env_defaults(path):
    """{variable: default} of every os.environ.get(NAME, DEFAULT) / _env(NAME, DEFAULT) /
    _number(NAME, DEFAULT) in a module."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and len(node.args) == 2 and all(isinstance(a, ast.Constant) for a in node.args):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("get", "_env", "_number"):
                found[node.args[0].value] = str(node.args[1].value)
    return found


def test_the_app_and_the_workers_default_to_the_same_ports():
    # app/ and worker/ run in the image, which has no native/: they keep literal defaults.
    app = env_defaults(REPO / "app" / "settings.py")
    assert app["APP_BIND"].endswith(f":{PORTS['app']}")
    assert app["FLOWER_PUBLIC_URL"] == f"http://localhost:{PORTS['flower']}"
    assert env_defaults(REPO / "app" / "gunicorn_conf.py")["APP_BIND"] == app["APP_BIND"]
    worker = env_defaults(REPO / "worker" / "settings.py")
    assert worker["WORKER_METRICS_PORT"] == str(PORTS["worker_metrics"])
    assert worker["RMQ_URL"].endswith(f"@127.0.0.1:{PORTS['rabbitmq']}//")
    assert worker["REDIS_URL"] == f"redis://127.0.0.1:{PORTS['redis']}/0"
    flower = env_defaults(REPO / "worker" / "flowerconfig.py")
    assert flower["port"] == str(PORTS["flower"])
    assert f":{PORTS['rabbitmq_management']}/api/" in flower["broker_api"]
