"""Derive native-mode configs from the compose-oriented files: never a hand-kept copy.

In compose, targets are `service:port` on the compose network; natively every service listens on
127.0.0.1 on the same port (moved by NATIVE_PORT_OFFSET for a second stack, but for the servers the
stacks share), and the worker replicas found by DNS become one target per worker.
"""

import re
from pathlib import Path

import yaml

from mixin.config import Config
from native.ports import BASE_PORTS, OFFSET, PORTS, SHARED

# Compose service names that may appear as hosts in the config files.
COMPOSE_SERVICES = (
    "rabbitmq",
    "redis",
    "app",
    "celery_worker",
    "flower",
    "celery_exporter",
    "prometheus",
    "alertmanager",
    "grafana",
)
HOST = "127.0.0.1"
WORKER_JOB = Config().jobs.worker
WORKER_BASE_PORT = PORTS["worker_metrics"]


def worker_port(index):
    """Native worker i (1-based) serves /metrics on PORTS["worker_metrics"] + i - 1."""
    return WORKER_BASE_PORT + index - 1


# Compose services whose servers every native stack shares (their ports never move).
SHARED_SERVICES = ("rabbitmq", "redis")
SHARED_PORTS = {BASE_PORTS[name] for name in SHARED}


def _local(target):
    host, _, port = target.rpartition(":")
    if host not in COMPOSE_SERVICES:
        return target
    moved = int(port) if host in SHARED_SERVICES or int(port) in SHARED_PORTS else int(port) + OFFSET
    return f"{HOST}:{moved}"


def _local_urls(text):
    """Every http://<service>:<port> in text pointed at this stack's port on 127.0.0.1."""
    return _URL.sub(lambda m: f"//{_local(f'{m.group(1)}:{m.group(2)}')}", text)


def prometheus_config(
    source: Path, workers: int, cluster: str = "", remote_write: str = "", *, vhost: str = ""
) -> dict:
    """Prometheus's config natively; `cluster` (a stack standing for one cluster of several) becomes
    an external label, on alerts sent and samples remote-written to `remote_write` (a global store's
    write URL, e.g. http://127.0.0.1:9390/api/v1/write). With `vhost`, RabbitMQ's per-queue series
    are those of this stack's vhost only: the broker is shared with other stacks and the bench."""
    config = yaml.safe_load(source.read_text())
    if cluster:
        config.setdefault("global", {}).setdefault("external_labels", {})["cluster"] = cluster
    if remote_write:
        config["remote_write"] = [{"url": remote_write}]
    base = source.resolve().parent
    config["rule_files"] = [str((base / pattern).resolve()) for pattern in config.get("rule_files", [])]
    for am in config.get("alerting", {}).get("alertmanagers", []):
        for sc in am.get("static_configs", []):
            sc["targets"] = [_local(t) for t in sc["targets"]]
    for job in config["scrape_configs"]:
        for sc in job.get("static_configs", []):
            sc["targets"] = [_local(t) for t in sc["targets"]]
        if vhost and job.get("metrics_path") == "/metrics/detailed":
            job.setdefault("params", {})["vhost"] = [vhost]
        if job.pop("dns_sd_configs", None) is not None:
            if job["job_name"] != WORKER_JOB:
                raise ValueError(f"native mode knows how to expand DNS discovery only for {WORKER_JOB}")
            job["static_configs"] = [{"targets": [f"{HOST}:{worker_port(i)}" for i in range(1, workers + 1)]}]
    return config


_URL = re.compile(r"//(%s):(\d+)" % "|".join(COMPOSE_SERVICES))


# Optional integrations: (env var with the secret, global key naming its file, receiver key).
AM_SECRETS = (
    ("SLACK_API_URL", "slack_api_url_file", "slack_configs"),
    ("SMTP_PASSWORD", "smtp_auth_password_file", "email_configs"),
)
# The app's webhook token: Alertmanager sends it as `Authorization: Bearer` (http_config).
WEBHOOK_TOKEN = "ALERT_WEBHOOK_TOKEN"


def alertmanager_config(source: Path, env=None, secrets_dir: Path = None) -> str:
    """Alertmanager's file with every http://<service>:<port> pointed at 127.0.0.1.

    Slack and email read their secret from a file (Alertmanager expands no environment variables):
    with the variable set, native mode writes it to secrets_dir and points the file key there;
    without it, that integration is left out instead of failing at every notification.
    The webhook's bearer token (ALERT_WEBHOOK_TOKEN, which the app checks) is rendered the same way;
    without it the webhook posts carry no token. Template paths become absolute (they are relative
    to the source file's folder, and the rendered file lives elsewhere).
    """
    config = yaml.safe_load(_local_urls(source.read_text()))
    env = env or {}
    base = source.resolve().parent
    config["templates"] = [str(base / t) for t in config.get("templates", [])]

    def secret_file(var):
        secrets_dir.mkdir(parents=True, exist_ok=True)
        path = secrets_dir / var.lower()
        path.write_text(env[var])
        path.chmod(0o600)
        return str(path)

    for var, file_key, receiver_key in AM_SECRETS:
        if env.get(var) and secrets_dir is not None:
            config["global"][file_key] = secret_file(var)
            continue
        config.get("global", {}).pop(file_key, None)
        for receiver in config.get("receivers", []):
            receiver.pop(receiver_key, None)
    token = secret_file(WEBHOOK_TOKEN) if env.get(WEBHOOK_TOKEN) and secrets_dir is not None else None
    for receiver in config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            auth = hook.get("http_config", {}).get("authorization")
            if auth is None:
                continue
            if token:
                auth["credentials_file"] = token
            else:
                del hook["http_config"]["authorization"]
    return yaml.safe_dump(config, sort_keys=False)


def write_yaml(config: dict, dest: Path):
    dest.write_text("# Generated by native/derive.py; do not edit.\n" + yaml.safe_dump(config, sort_keys=False))


def grafana_provisioning(source: Path, dest: Path):
    """Copy grafana/provisioning with every http://<service>:<port> pointed at 127.0.0.1."""
    for path in source.rglob("*"):
        if path.is_file():
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = _local_urls(path.read_text())
            # The dashboards provider names the compose mount point; natively it is `dest`.
            target.write_text(text.replace("/etc/grafana/provisioning", str(dest)))
