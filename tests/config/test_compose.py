"""Static checks of compose.yaml (and compose.production.yaml): no Docker engine needed.

What is checked: every service is there; images are pinned or built from our Dockerfile; every
service has a healthcheck and depends only on healthy services; bind-mounted paths exist; ports
are published on 127.0.0.1 only; no secret is written literally; data lives in named volumes;
ports agree with the contract and with prometheus/prometheus.yml; the production override turns
on Flower auth and turns off Grafana anonymous access. Where the compose-spec package (PyPI) is
installed, it validates both files against the Compose specification; where `docker compose`
is installed, `docker compose config -q` does too. Each of those skips with its reason otherwise.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
PRODUCTION_FILE = REPO / "compose.production.yaml"
ENV_EXAMPLE = REPO / ".env.example"
PROMETHEUS_FILE = REPO / "prometheus" / "prometheus.yml"

# The contract's services and the container ports each one serves (DESIGN.md, "Components and ports").
CONTRACT_PORTS = {
    "rabbitmq": {5672, 15672, 15692},
    "redis": {6379},
    "app": {8080},
    "celery_worker": {9191},
    "flower": {5555},
    "celery_exporter": {9808},
    "prometheus": {9090},
    "alertmanager": {9093},
    "grafana": {3000},
}
# Services that Prometheus must scrape (grafana and redis are not scraped).
SCRAPED = ["app", "celery_worker", "flower", "celery_exporter", "rabbitmq", "alertmanager", "prometheus"]
BUILT_SERVICES = {"app", "celery_worker", "flower"}

# Named volume -> (service, mount point) that must use it.
DATA_VOLUMES = {
    "rabbitmq-data": ("rabbitmq", "/var/lib/rabbitmq"),
    "prometheus-data": ("prometheus", "/prometheus"),
    "alertmanager-data": ("alertmanager", "/alertmanager"),
    "grafana-data": ("grafana", "/var/lib/grafana"),
    "flower-data": ("flower", "/data"),
}

SECRET_KEY_RE = re.compile(r"(PASSWORD|PASSWD|_PASS|SECRET|TOKEN|API_KEY|PRIVATE_KEY|BASIC_AUTH|CREDENTIALS?)$")
SECRET_ENV_VARS = ["RMQ_USER", "RMQ_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "FLASK_SECRET_KEY"]
# ${VAR}, ${VAR:-x}, ${VAR-x}, ${VAR:?msg}, ${VAR?msg}, and $VAR / $$VAR (shell, inside a container).
INTERP_RE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
SHELL_VAR_RE = re.compile(r"\$\$?[A-Za-z_][A-Za-z0-9_]*")
# scheme://user:password@ where user and password may be ${...} references (which may hold spaces).
_URL_PART = r"(?:\$\{[^}]*\}|[^/@\s:$]|\$(?!\{))*"
URL_USERINFO_RE = re.compile(rf"[a-z][a-z0-9+.-]*://(?P<user>{_URL_PART}):(?P<password>{_URL_PART})@", re.I)
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def compose():
    assert COMPOSE_FILE.exists(), "compose.yaml is missing"
    data = load(COMPOSE_FILE)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "compose.yaml has no services"
    return data


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def env_of(service):
    """A service's environment as a dict, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def as_list(cmd):
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return cmd.split()
    return [str(c) for c in cmd]


def published_ports(service):
    """[(host_ip, host_port, container_port)] from short or long port syntax ('' = not given)."""
    out = []
    for spec in service.get("ports") or []:
        if isinstance(spec, dict):
            out.append((str(spec.get("host_ip", "")), str(spec.get("published", "")), int(spec["target"])))
            continue
        spec = str(spec).split("/")[0]
        ip = ""
        if spec.startswith("${"):  # ${BIND_ADDRESS:-127.0.0.1}:8080:8080
            end = spec.index("}") + 1
            ip, spec = spec[:end], spec[end + 1:]
        elif spec.startswith("["):  # [::1]:8080:8080
            end = spec.index("]") + 1
            ip, spec = spec[:end], spec[end + 1:]
        parts = spec.split(":")
        if len(parts) == 3:
            ip, parts = parts[0], parts[1:]
        host, ctr = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        assert ctr.isdigit(), f"cannot parse port {spec!r}"
        out.append((ip, host, int(ctr)))
    return out


def effective_ip(ip):
    """The address a published port binds to: ${VAR:-default} counts as its default."""
    m = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-(?P<default>[^}]*)\}", ip)
    return m.group("default") if m else (ip or "0.0.0.0")


def container_ports(service):
    ports = {int(str(p).split("/")[0]) for p in service.get("expose") or []}
    ports |= {ctr for _, _, ctr in published_ports(service)}
    return ports


def mounts(service):
    """[(kind, source, target, read_only)] for volumes in short or long syntax."""
    out = []
    for spec in service.get("volumes") or []:
        if isinstance(spec, dict):
            kind = spec.get("type", "volume")
            out.append((kind, str(spec.get("source", "")), str(spec["target"]), bool(spec.get("read_only"))))
            continue
        parts = str(spec).split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        mode = parts[2] if len(parts) > 2 else ""
        kind = "bind" if source.startswith((".", "/", "~")) else ("volume" if source else "anonymous")
        out.append((kind, source, target, "ro" in mode.split(",")))
    return out


def is_pure_reference(value):
    """True if the value is only ${VAR} references whose defaults are empty (no literal secret)."""
    rest = value
    for m in INTERP_RE.finditer(value):
        if m.group("op") in ("-", ":-", "+", ":+") and m.group("arg"):
            return False  # ${SECRET:-literal} would ship a default secret
        rest = rest.replace(m.group(0), "", 1)
    rest = SHELL_VAR_RE.sub("", rest)
    return rest.strip() == ""


def all_strings(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from all_strings(k)
            yield from all_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_strings(v)
    elif isinstance(node, str):
        yield node


# --- services and images -------------------------------------------------------------------

def test_all_services_present(services):
    missing = sorted(set(CONTRACT_PORTS) - set(services))
    assert not missing, f"compose.yaml lacks services: {missing}"


def test_images_pinned_or_built(services):
    for name, svc in services.items():
        if "build" in svc:
            build = svc["build"]
            context = REPO / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).exists(), f"{name}: {context / dockerfile} does not exist"
            continue
        image = svc.get("image")
        assert image, f"{name}: neither image nor build"
        if "@sha256:" in image:
            continue
        repo_part, sep, tag = image.rpartition(":")
        assert sep and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: image {image!r} is not pinned to a version"
        assert "${" not in image, f"{name}: image {image!r} must not be chosen by a variable"


def test_python_services_share_the_dockerfile_image(services):
    for name in BUILT_SERVICES:
        assert services[name].get("build"), f"{name} must be built from the Dockerfile"
    images = {(yaml.safe_dump(services[n]["build"]), services[n].get("image")) for n in BUILT_SERVICES}
    assert len(images) == 1, f"app, celery_worker and flower must use one image: {images}"


def test_image_series_match_the_contract(services):
    assert re.fullmatch(r"rabbitmq:3\.13\.\d+-management(-alpine)?", services["rabbitmq"]["image"]), \
        "RabbitMQ must stay on 3.13.x-management (4.3+ breaks Celery's transient queues)"
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", services["prometheus"]["image"]), \
        "Prometheus must be a 2.x release (config written for promtool 2.42)"
    assert services["celery_exporter"]["image"].startswith(("danihodovic/celery-exporter:", "ghcr.io/danihodovic/celery-exporter:"))
    assert re.fullmatch(r"grafana/grafana(-oss)?:11\.\d+\.\d+", services["grafana"]["image"])
    assert re.fullmatch(r"redis:7\.\d+\.\d+-alpine", services["redis"]["image"])


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


# --- commands --------------------------------------------------------------------------------

def test_python_service_commands(services):
    assert as_list(services["app"]["command"]) == ["gunicorn", "--config", "app/gunicorn_conf.py", "app.wsgi:app"]
    assert as_list(services["celery_worker"]["command"]) == [
        "celery", "-A", "worker.celery_app", "worker", "--loglevel=INFO", "-n", "celery_worker@%h"]
    assert as_list(services["flower"]["command"]) == [
        "celery", "-A", "worker.celery_app", "flower", "--conf=worker/flowerconfig.py"]


def test_exporter_runs_through_our_launcher(services):
    svc = services["celery_exporter"]
    argv = as_list(svc.get("entrypoint")) + as_list(svc.get("command"))
    launcher = [m for m in mounts(svc) if m[1].endswith("exporter/run_exporter.py")]
    assert launcher and launcher[0][3], "exporter/run_exporter.py must be mounted read-only"
    assert launcher[0][2] in " ".join(argv), "the exporter must be started through the mounted launcher"
    joined = " ".join(argv)
    for flag in ("--host=0.0.0.0", "--port=9808", "--retry-interval="):
        assert flag in joined, f"exporter argument {flag} missing"
    assert env_of(svc).get("PYTHONPATH") == "/app"
    broker = env_of(svc).get("CE_BROKER_URL", "") or joined
    assert "@rabbitmq:5672" in broker


def test_prometheus_and_alertmanager_flags(services):
    prom = as_list(services["prometheus"]["command"])
    for flag in ("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                 "--web.enable-lifecycle"):
        assert flag in prom, f"prometheus flag {flag} missing"
    assert any(f.startswith("--web.external-url=") for f in prom)
    targets = {m[2]: m for m in mounts(services["prometheus"])}
    # rule_files: ../alerts/*.rules.yml relative to /etc/prometheus/prometheus.yml
    assert "/etc/prometheus" in targets and "/etc/alerts" in targets
    am = as_list(services["alertmanager"]["command"])
    assert "--cluster.listen-address=" in am, "Alertmanager HA gossip must be off"
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am


def test_celery_clients_get_guide_environment(services):
    for name in ("app", "celery_worker", "flower"):
        env = env_of(services[name])
        assert re.fullmatch(r"amqp://\$\{RMQ_USER[^}]*\}:\$\{RMQ_PASSWORD[^}]*\}@rabbitmq:5672//", env.get("RMQ_URL", "")), \
            f"{name}: RMQ_URL must be amqp://${{RMQ_USER}}:${{RMQ_PASSWORD}}@rabbitmq:5672//"
        assert env.get("REDIS_URL") == "redis://redis:6379/0", f"{name}: REDIS_URL"
    assert env_of(services["app"]).get("APP_BIND") == "0.0.0.0:8080"
    worker = env_of(services["celery_worker"])
    assert worker.get("WORKER_METRICS_ADDR") == "0.0.0.0" and worker.get("WORKER_METRICS_PORT") == "9191"
    flower = env_of(services["flower"])
    assert flower.get("FLOWER_ADDRESS") == "0.0.0.0" and flower.get("FLOWER_PORT") == "5555"
    assert flower.get("FLOWER_PERSISTENT", "").lower() == "true" and flower.get("FLOWER_DB") == "/data/flower.db"
    assert "@rabbitmq:15672/api/" in flower.get("FLOWER_BROKER_API", "")
    assert "FLOWER_BASIC_AUTH" in flower, "FLOWER_BASIC_AUTH must be passed through (honoured when set)"


def test_rabbitmq_enables_management_and_prometheus_plugins(compose, services):
    configs = {c["source"]: c for c in services["rabbitmq"].get("configs", []) if isinstance(c, dict)}
    plugins = [src for src, c in configs.items() if c.get("target") == "/etc/rabbitmq/enabled_plugins"]
    assert plugins, "mount an enabled_plugins file into rabbitmq"
    content = compose["configs"][plugins[0]].get("content", "")
    assert "rabbitmq_management" in content and "rabbitmq_prometheus" in content


# --- health and start order -----------------------------------------------------------------

def test_every_service_has_a_healthcheck(services):
    for name, svc in services.items():
        hc = svc.get("healthcheck")
        assert hc, f"{name}: no healthcheck"
        assert not hc.get("disable"), f"{name}: healthcheck disabled"
        test = hc.get("test")
        assert test and as_list(test)[0] != "NONE", f"{name}: empty healthcheck"


def test_depends_on_waits_for_healthy(services):
    for name, svc in services.items():
        deps = svc.get("depends_on")
        if deps is None:
            continue
        assert isinstance(deps, dict), f"{name}: depends_on must use the long form with condition: service_healthy"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert (spec or {}).get("condition") == "service_healthy", f"{name} -> {dep}: condition must be service_healthy"
            assert services[dep].get("healthcheck"), f"{name} waits for {dep}, which has no healthcheck"


def test_required_start_order(services):
    def deps(name):
        return set((services[name].get("depends_on") or {}).keys())
    for name in ("app", "celery_worker", "flower", "celery_exporter"):
        assert "rabbitmq" in deps(name), f"{name} must wait for a healthy rabbitmq"
    for name in ("app", "celery_worker"):
        assert "redis" in deps(name), f"{name} must wait for a healthy redis"
    assert "prometheus" in deps("grafana")


# --- scaling, ports, mounts, volumes --------------------------------------------------------

def test_worker_can_scale(services):
    worker = services["celery_worker"]
    for key in ("container_name", "hostname", "ports"):
        assert not worker.get(key), f"celery_worker must not set {key} (breaks --scale celery_worker=3)"
    assert 9191 in container_ports(worker)
    for name, svc in services.items():
        assert "container_name" not in svc, f"{name}: container_name would block scaling and parallel projects"


def test_published_ports_bind_loopback(services):
    for name, svc in services.items():
        for ip, host, ctr in published_ports(svc):
            assert effective_ip(ip) in LOOPBACK, f"{name}: port {ctr} is published on {effective_ip(ip)!r}, not 127.0.0.1"
            assert host, f"{name}: port {ctr} gets a random host port; give it the contract's number"


def test_service_ports_match_contract(services):
    for name, expected in CONTRACT_PORTS.items():
        ports = container_ports(services[name])
        assert expected <= ports, f"{name}: expected container ports {sorted(expected)}, found {sorted(ports)}"
        for _, host, ctr in published_ports(services[name]):
            assert ctr in expected, f"{name}: publishes {ctr}, which is not one of its contract ports"
            assert host == str(ctr), f"{name}: host port {host} != container port {ctr}"


def test_bind_mounts_exist_and_are_read_only(services, compose):
    for name, svc in services.items():
        for kind, source, target, read_only in mounts(svc):
            if kind != "bind":
                continue
            path = (COMPOSE_FILE.parent / os.path.expanduser(source)).resolve()
            assert path.exists(), f"{name}: bind-mounted {source} does not exist in the repo"
            assert read_only, f"{name}: config mount {source}:{target} should be read-only (:ro)"
        env_files = svc.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, (str, dict)) else env_files:
            path = env_file if isinstance(env_file, str) else env_file.get("path")
            if Path(path).name == ".env" or (isinstance(env_file, dict) and env_file.get("required") is False):
                continue  # .env holds the real secrets and may be absent in a checkout
            assert (COMPOSE_FILE.parent / path).exists(), f"{name}: env_file {path} missing"
    for cname, cfg in (compose.get("configs") or {}).items():
        if "file" in cfg:
            assert (COMPOSE_FILE.parent / cfg["file"]).exists(), f"config {cname}: {cfg['file']} missing"


def test_named_volumes_declared_and_used(compose, services):
    declared = set((compose.get("volumes") or {}).keys())
    for name, svc in services.items():
        for kind, source, _, _ in mounts(svc):
            if kind == "volume":
                assert source in declared, f"{name}: volume {source} is not declared at the top level"
    for volume, (service, target) in DATA_VOLUMES.items():
        assert volume in declared, f"named volume {volume} missing"
        used = [(s, t) for k, s, t, _ in mounts(services[service]) if k == "volume"]
        assert (volume, target) in used, f"{service} must keep its data in {volume} at {target}"


# --- secrets -------------------------------------------------------------------------------

def _check_no_secret_literals(path):
    data = load(path)
    problems = []
    for name, svc in (data.get("services") or {}).items():
        for key, value in env_of(svc).items():
            # user:password built only from references (${FLOWER_USER}:${FLOWER_PASSWORD}) is fine
            if SECRET_KEY_RE.search(key) and value and INTERP_RE.sub("", str(value)).strip(":"):
                problems.append(f"{name}: {key}={value!r} is a literal; use ${{VAR}} from .env")
    for text in all_strings(data):
        for m in URL_USERINFO_RE.finditer(text):
            for part in ("user", "password"):
                if not is_pure_reference(m.group(part)):
                    problems.append(f"URL credentials {m.group(part)!r} in {text!r} must be ${{VAR}} references")
    raw = path.read_text()
    for bad in ("guest:guest", "admin:admin", "password123", "changeme", "change-me"):
        if bad in raw:
            problems.append(f"{path.name} contains the default credential {bad!r}")
    return problems


def test_no_secret_literals_in_compose():
    assert not _check_no_secret_literals(COMPOSE_FILE)


def test_required_secrets_come_from_env(services):
    text = COMPOSE_FILE.read_text()
    for var in SECRET_ENV_VARS:
        refs = [m for m in INTERP_RE.finditer(text) if m.group("name") == var]
        assert refs, f"compose.yaml never uses ${{{var}}}"
        for m in refs:
            assert m.group("op") in (None, ":?", "?"), f"${{{var}}} must not have a default: {m.group(0)}"
    grafana = env_of(services["grafana"])
    assert grafana.get("GF_SECURITY_ADMIN_PASSWORD", "").startswith("${GRAFANA_ADMIN_PASSWORD")
    rabbit = env_of(services["rabbitmq"])
    assert rabbit.get("RABBITMQ_DEFAULT_USER", "").startswith("${RMQ_USER")
    assert rabbit.get("RABBITMQ_DEFAULT_PASS", "").startswith("${RMQ_PASSWORD")
    assert env_of(services["app"]).get("FLASK_SECRET_KEY", "").startswith("${FLASK_SECRET_KEY")


def test_env_example_lists_every_required_variable():
    assert ENV_EXAMPLE.exists(), ".env.example must be committed"
    example = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    texts = [COMPOSE_FILE.read_text()]
    for text in texts:
        for m in INTERP_RE.finditer(text):
            if m.group("op") in (":?", "?") or m.group("name") in SECRET_ENV_VARS:
                assert m.group("name") in example, f"{m.group('name')} is required by compose.yaml but not in .env.example"
    assert example.get("RMQ_USER") not in ("", "guest"), "the example RabbitMQ user must not be guest"
    assert "FLOWER_BASIC_AUTH" in example


def test_env_file_is_git_ignored():
    if not (REPO / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", ".env"], check=False)
    assert result.returncode == 0, ".env (the real secrets) must be listed in .gitignore"


# --- Prometheus targets agree with compose --------------------------------------------------

def _prometheus_targets():
    """[(job, host, port)] from static_configs, dns_sd_configs and the alertmanagers list."""
    cfg = load(PROMETHEUS_FILE)
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
    return out


def test_prometheus_targets_match_compose_ports(services):
    if not PROMETHEUS_FILE.exists():
        reason = f"{PROMETHEUS_FILE.relative_to(REPO)} not written yet"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    targets = _prometheus_targets()
    assert targets, "prometheus.yml has no targets"
    for job, host, port in targets:
        service = "prometheus" if host in LOOPBACK and job == "prometheus" else host
        assert service in services, f"job {job}: target host {host!r} is not a compose service"
        assert port in container_ports(services[service]), \
            f"job {job}: {host}:{port} but {service} serves {sorted(container_ports(services[service]))}"
        assert port in CONTRACT_PORTS.get(service, {port}), f"job {job}: {service}:{port} is not the contract's port"
    scraped = {("prometheus" if h in LOOPBACK else h) for j, h, _ in targets if j != "<alerting>"}
    missing = sorted(set(SCRAPED) - scraped)
    assert not missing, f"prometheus.yml scrapes none of: {missing}"
    cfg = load(PROMETHEUS_FILE)
    worker_jobs = [j for j in cfg["scrape_configs"] if any("celery_worker" in (d.get("names") or []) for d in j.get("dns_sd_configs") or [])]
    assert worker_jobs, "celery_worker replicas must be discovered by dns_sd_configs (they scale)"
    assert any(h == "alertmanager" for j, h, _ in targets if j == "<alerting>"), "Prometheus must send alerts to alertmanager"


# --- production profile ---------------------------------------------------------------------

def test_production_override_requires_auth():
    if not PRODUCTION_FILE.exists():
        pytest.skip("compose.production.yaml not written yet")
    prod = load(PRODUCTION_FILE)["services"]
    flower = env_of(prod["flower"])
    user, password = flower.get("FLOWER_BASIC_AUTH", "").split("}:", 1)
    m = INTERP_RE.fullmatch(password)
    assert user.startswith("${FLOWER_USER") and m and m.group("name") == "FLOWER_PASSWORD" \
        and m.group("op") in (":?", "?"), "production must refuse to start Flower without FLOWER_PASSWORD"
    assert flower.get("FLOWER_UNAUTHENTICATED_API", "").lower() == "false"
    grafana = env_of(prod["grafana"])
    assert grafana.get("GF_AUTH_ANONYMOUS_ENABLED", "").lower() == "false"
    for name, svc in prod.items():
        for ip, _, ctr in published_ports(svc):
            assert effective_ip(ip) in LOOPBACK, f"production {name}: port {ctr} not on loopback"
    assert not _check_no_secret_literals(PRODUCTION_FILE)


# --- without Docker: schema validation by the compose-spec parser (optional dependency) -----

def _env_example_values():
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _interpolate(node, env):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$."""
    if isinstance(node, dict):
        return {k: _interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def replace(m):
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        value = env.get(name)
        if op in (":-", ":?"):
            unset = not value
        else:
            unset = value is None
        if op in (":-", "-"):
            return arg if unset else value
        if op in (":?", "?"):
            assert not unset, f"${{{name}}} is required: {arg}"
            return value
        return value or ""

    return INTERP_RE.sub(replace, node.replace("$$", "\0")).replace("\0", "$")


def _merge(base, override):
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.production.yaml"]],
                         ids=["base", "production"])
def test_compose_spec_schema(files):
    compose_spec = pytest.importorskip("compose_spec", reason="compose-spec (PyPI) not installed")
    env = _env_example_values()
    env["FLOWER_BASIC_AUTH"] = "ci:not-a-real-password"
    merged = {}
    for f in files:
        if not (REPO / f).exists():
            pytest.skip(f"{f} not written yet")
        _merge(merged, _interpolate(load(REPO / f), env))
    compose_spec.PyCompose.from_yaml(yaml.safe_dump(merged))  # raises ValueError naming the bad key


def test_production_refuses_to_start_without_flower_auth():
    if not PRODUCTION_FILE.exists():
        pytest.skip("compose.production.yaml not written yet")
    env = _env_example_values()
    env["FLOWER_PASSWORD"] = ""
    with pytest.raises(AssertionError, match="FLOWER_PASSWORD"):
        _interpolate(load(PRODUCTION_FILE), env)
    _interpolate(load(COMPOSE_FILE), env)  # the dev stack starts without it


# --- with Docker Compose installed: let Compose itself validate -----------------------------

def _docker_compose_available():
    """None if `docker compose` can run here, else why not. `config` itself needs no engine."""
    if not shutil.which("docker"):
        return "no Docker engine (no docker CLI)"
    try:
        version = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20, check=False)
        if version.returncode == 0:
            return None
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine ({exc})"
    engine = "engine up" if info.returncode == 0 else "no Docker engine"
    return f"{engine}, and no `docker compose` plugin"


@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.production.yaml"]],
                         ids=["base", "production"])
def test_docker_compose_config(files):
    reason = _docker_compose_available()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    if not all((REPO / f).exists() for f in files):
        pytest.skip(f"missing {files}")
    env_file = REPO / ".env" if (REPO / ".env").exists() else ENV_EXAMPLE
    env = dict(os.environ)
    env.setdefault("FLOWER_BASIC_AUTH", "ci:not-a-real-password")
    cmd = ["docker", "compose", "--project-directory", str(REPO), "--env-file", str(env_file)]
    for f in files:
        cmd += ["-f", str(REPO / f)]
    result = subprocess.run(cmd + ["config", "-q"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
