"""prometheus/prometheus.yml: valid for promtool (with its rule files), and agreeing with mixin/config.py."""
import shutil
import subprocess

import pytest
import yaml

from mixin.config import JOBS
from native import derive, paths

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
    assert jobs == set(JOBS.values())


def test_exporter_scrape_timeout_leaves_room_for_its_two_second_scrape():
    config = yaml.safe_load(PROM.read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == JOBS["exporter"]]
    timeout = float(job["scrape_timeout"].rstrip("s"))
    interval = float(job.get("scrape_interval", config["global"]["scrape_interval"]).rstrip("s"))
    assert 4 <= timeout < interval


def test_prometheus_sends_alerts_to_alertmanager():
    config = yaml.safe_load(PROM.read_text())
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
