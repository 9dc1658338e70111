"""prometheus/prometheus.yml: valid for promtool (with its rule files), and agreeing with mixin/config.py."""

import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
import yaml

from mixin.config import Config
from native import derive, paths, services

JOBS = Config().jobs.model_dump()

PROM = paths.REPO / "prometheus" / "prometheus.yml"
pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)


def test_promtool_checks_the_config_and_its_rule_files():
    result = promtool("check", "config", str(PROM))
    assert result.returncode == 0, result.stdout + result.stderr
    # rule_files is relative to the config, so promtool really loaded the rules.
    rules = sorted((paths.REPO / "alerts").glob("*.rules.yml"))
    for rule_file in rules:
        assert str(rule_file.name) in result.stdout


def test_the_derived_native_config_is_valid(tmp_path):
    dest = tmp_path / "prometheus.yml"
    derive.write_yaml(derive.prometheus_config(PROM, workers=3), dest)
    result = promtool("check", "config", str(dest))
    assert result.returncode == 0, result.stdout + result.stderr


def test_job_names_match_the_single_source():
    jobs = {job["job_name"] for job in yaml.safe_load(PROM.read_text())["scrape_configs"]}
    redis = {
        job["job_name"] for job in yaml.safe_load((PROM.parent / "prometheus.redis.yml").read_text())["scrape_configs"]
    }
    # The RabbitMQ file has every job but Redis's; the Redis-broker file swaps the RabbitMQ jobs for it.
    assert jobs == set(JOBS.values()) - {JOBS["redis_broker"]}
    assert redis == set(JOBS.values()) - {JOBS["rabbitmq"], JOBS["rabbitmq_queues"]}


def test_exporter_scrape_timeout_leaves_room_for_its_two_second_scrape():
    config = yaml.safe_load(PROM.read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == JOBS["exporter"]]
    timeout = float(job["scrape_timeout"].rstrip("s"))
    interval = float(job.get("scrape_interval", config["global"]["scrape_interval"]).rstrip("s"))
    assert 4 <= timeout < interval


def test_native_prometheus_sends_alerts_where_native_alertmanager_listens():
    config = derive.prometheus_config(PROM, workers=1)
    targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    [alertmanager] = [s for s in services.core() if s.name == "alertmanager"]
    assert targets == [urlsplit(alertmanager.health).netloc]
