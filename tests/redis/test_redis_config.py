"""Redis as broker without a running stack: broker selection, the derived Prometheus config, the
compose override and the worker's transport options."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from mixin.config import Config
from mixin.prometheus import redis_config_text
from mixin.settings_reference import ComposeLoader
from native import broker, env as native_env, paths

JOBS = Config().jobs.model_dump()
REDIS_BROKER_JOB = JOBS["redis_broker"]
RABBITMQ_JOBS = (JOBS["rabbitmq"], JOBS["rabbitmq_queues"])

REPO = paths.REPO


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("BROKER", "BROKER_URL", "RMQ_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return {"REDIS_URL": "redis://127.0.0.1:6379/0", "RMQ_URL": "amqp://u:p@127.0.0.1:5672//"}


def test_rabbitmq_stays_the_default_and_uses_rmq_url(clean_env):
    assert native_env.select_broker(clean_env) == "rabbitmq"
    assert clean_env["BROKER_URL"] == "amqp://u:p@127.0.0.1:5672//"


def test_broker_redis_gets_its_own_server_not_the_results_database(clean_env):
    clean_env["BROKER"] = "redis"
    assert native_env.select_broker(clean_env) == "redis"
    assert clean_env["BROKER_URL"] == native_env.REDIS_BROKER_URL != clean_env["REDIS_URL"]


def test_a_redis_broker_url_alone_selects_redis(clean_env):
    clean_env["BROKER_URL"] = "redis://10.0.0.5:6379/2"
    assert native_env.select_broker(clean_env) == "redis"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"BROKER": "kafka"}, "BROKER must be one of rabbitmq, redis, got 'kafka'"),
        ({"BROKER": "redis", "BROKER_URL": "amqp://x@h//"}, "BROKER=redis but BROKER_URL is 'amqp://x@h//'"),
        ({"BROKER_URL": "sqs://queue"}, "BROKER_URL must be an amqp:// or redis:// URL, got 'sqs://queue'"),
        ({"BROKER_URL": "redis://localhost:6379/0"}, "is the result backend's database"),
    ],
)
def test_bad_broker_settings_are_refused_naming_the_value(clean_env, values, message):
    clean_env.update(values)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        native_env.select_broker(clean_env)


def test_unreachable_broker_fails_fast_with_its_address():
    import time

    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"cannot reach the broker at redis://u:\*\*\*@10\.255\.255\.1:6379/0"):
        broker.ensure_reachable("redis://u:secret@10.255.255.1:6379/0", lambda m: None, timeout=1)
    assert time.monotonic() - t0 < 5


def test_make_up_with_an_unreachable_broker_url_says_so(tmp_path):
    """`python -m native up` exits 1 with one line, before starting anything."""
    # 127.0.0.2 is not "localhost" to native mode: a remote broker, never started here.
    env = {**os.environ, "BROKER_URL": "redis://127.0.0.2:1/1", "BROKER": "redis"}
    r = subprocess.run(
        [sys.executable, "-m", "native", "up"], capture_output=True, text=True, timeout=60, env=env, cwd=REPO
    )
    assert r.returncode == 1
    assert r.stdout.startswith("error: cannot reach the broker at redis://127.0.0.2:1/1"), r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_committed_redis_prometheus_config_is_generated():
    assert (REPO / "prometheus" / "prometheus.redis.yml").read_text() == redis_config_text(Config())


def test_redis_prometheus_config_scrapes_the_redis_exporter_not_rabbitmq():
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.redis.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert not set(RABBITMQ_JOBS) & set(jobs)
    assert set(jobs) == set(JOBS.values()) - set(RABBITMQ_JOBS) | {REDIS_BROKER_JOB}
    assert jobs[REDIS_BROKER_JOB]["static_configs"][0]["targets"] == ["redis_exporter:9121"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")
def test_promtool_accepts_the_redis_prometheus_config():
    r = subprocess.run(
        ["promtool", "check", "config", "prometheus/prometheus.redis.yml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_override_points_every_celery_process_at_the_redis_broker():
    base = yaml.safe_load((REPO / "compose.yaml").read_text())
    override = yaml.load((REPO / "compose.redis.yaml").read_text(), Loader=ComposeLoader)
    services = override["services"]
    url = "redis://redis_broker:6379/0"
    for name in ("app", "celery_worker", "flower"):
        assert services[name]["environment"]["BROKER_URL"] == url
        assert "rabbitmq" not in services[name]["depends_on"]
    assert services["celery_exporter"]["environment"]["CE_BROKER_URL"] == url
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    # Pinned images; results stay on the base file's redis service.
    assert services["redis_exporter"]["image"].startswith("oliver006/redis_exporter:v1.")
    assert ":" in services["redis_broker"]["image"] and "latest" not in services["redis_broker"]["image"]
    assert base["services"]["redis"]["image"] == services["redis_broker"]["image"]
    command = " ".join(services["redis_broker"]["command"])
    native = " ".join(broker.redis_broker_argv(6379, "/data"))
    for setting in (
        "--appendonly yes",
        "--appendfsync always",
        "--maxmemory-policy noeviction",
        f"pubsub {broker.PUBSUB_BUFFER_LIMIT}",
    ):
        assert setting in command and setting in native
    assert "prometheus.redis.yml" in " ".join(services["prometheus"]["command"])


def _settings(**env):
    code = (
        "import json; from worker import settings; "
        "print(json.dumps([settings.BROKER_URL, settings.BROKER_TRANSPORT_OPTIONS]))"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("BROKER_URL", "RMQ_URL", "VISIBILITY_TIMEOUT", "MAX_TIMEOUT_SECONDS")
    }
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, env={**clean, **env}
    )


def test_worker_uses_broker_url_with_a_visibility_timeout_longer_than_any_task():
    import json

    url, options = json.loads(_settings(BROKER_URL="redis://127.0.0.1:6380/0").stdout)
    assert url == "redis://127.0.0.1:6380/0" and options["visibility_timeout"] == 660
    assert options["unacked_restore_interval"] == 5 and options["unacked_restore_throttle"] == 1
    url, options = json.loads(_settings(RMQ_URL="amqp://a:b@h//").stdout)
    assert url == "amqp://a:b@h//" and "visibility_timeout" not in options


def test_a_visibility_timeout_shorter_than_the_longest_task_is_refused():
    r = _settings(BROKER_URL="redis://127.0.0.1:6380/0", VISIBILITY_TIMEOUT="30", MAX_TIMEOUT_SECONDS="60")
    assert r.returncode != 0 and "VISIBILITY_TIMEOUT (30) must exceed MAX_TIMEOUT_SECONDS (60)" in r.stderr
