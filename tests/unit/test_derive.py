"""Native configs are derived from the compose-oriented files, never hand-kept."""

import yaml

from native import derive, paths
from native.env import read_dotenv
from native.ports import PORTS

PROM = paths.REPO / "prometheus" / "prometheus.yml"


def targets(config):
    return {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        for job in config["scrape_configs"]
    }


def test_every_target_points_at_loopback_on_the_compose_port():
    source = yaml.safe_load(PROM.read_text())
    derived = derive.prometheus_config(PROM, workers=3)
    for job in source["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for target in sc["targets"]:
                port = target.rsplit(":", 1)[1]
                assert f"127.0.0.1:{port}" in targets(derived)[job["job_name"]]
    assert derived["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{PORTS['alertmanager']}"
    ]


def test_worker_dns_discovery_becomes_one_target_per_worker():
    for n in (1, 3):
        derived = derive.prometheus_config(PROM, workers=n)
        assert targets(derived)["celery_worker"] == [f"127.0.0.1:{PORTS['worker_metrics'] + i}" for i in range(n)]
        assert all("dns_sd_configs" not in job for job in derived["scrape_configs"])


def test_rule_files_resolve_to_the_repo_alerts_folder():
    derived = derive.prometheus_config(PROM, workers=1)
    assert derived["rule_files"] == [str(paths.REPO / "alerts" / "*.rules.yml")]


def test_alertmanager_urls_point_at_loopback(tmp_path):
    src = tmp_path / "am.yml"
    src.write_text(
        "receivers:\n- webhook_configs:\n  - url: http://app:8080/api/alerts\n  - url: http://example.com:80/x\n"
    )
    text = derive.alertmanager_config(src)
    assert "http://127.0.0.1:8080/api/alerts" in text
    assert "http://example.com:80/x" in text  # hosts that are not compose services are kept


AM = paths.REPO / "alertmanager" / "alertmanager.yml"


def test_slack_and_email_only_when_their_secret_is_in_the_environment(tmp_path):
    bare = yaml.safe_load(derive.alertmanager_config(AM, {}, tmp_path))
    assert not any("slack_configs" in r or "email_configs" in r for r in bare["receivers"])
    assert "slack_api_url_file" not in bare["global"]
    full = yaml.safe_load(
        derive.alertmanager_config(AM, {"SLACK_API_URL": "https://hooks.example/T1", "SMTP_PASSWORD": "pw"}, tmp_path)
    )
    assert any("slack_configs" in r for r in full["receivers"])
    assert any("email_configs" in r for r in full["receivers"])
    assert (tmp_path / "slack_api_url").read_text() == "https://hooks.example/T1"
    assert full["global"]["smtp_auth_password_file"] == str(tmp_path / "smtp_password")
    # Every receiver keeps its webhook either way.
    for doc in (bare, full):
        assert all(r["webhook_configs"][0]["url"] == "http://127.0.0.1:8080/api/alerts" for r in doc["receivers"])


def test_grafana_provisioning_is_rewritten(tmp_path):
    src = tmp_path / "src" / "datasources"
    src.mkdir(parents=True)
    (src / "p.yml").write_text("url: http://prometheus:9090\npath: /etc/grafana/provisioning/dashboards\n")
    derive.grafana_provisioning(tmp_path / "src", tmp_path / "out")
    text = (tmp_path / "out" / "datasources" / "p.yml").read_text()
    assert "http://127.0.0.1:9090" in text and str(tmp_path / "out" / "dashboards") in text


def test_dotenv_parsing(tmp_path):
    f = tmp_path / ".env"
    f.write_text("# comment\nA=1\nB='two words'\n\nC=\"x=y\"\nnot a pair\n")
    assert read_dotenv(f) == {"A": "1", "B": "two words", "C": "x=y"}
    assert read_dotenv(tmp_path / "missing") == {}


def test_rabbitmq_queue_series_are_those_of_the_stacks_vhost():
    for vhost in ("/", "celery-alerts"):
        derived = derive.prometheus_config(PROM, workers=1, vhost=vhost)
        detailed = [j for j in derived["scrape_configs"] if j.get("metrics_path") == "/metrics/detailed"]
        assert detailed and all(j["params"]["vhost"] == [vhost] for j in detailed)
        # The other params (the metric families) stay as the source file has them.
        assert all(j["params"]["family"] for j in detailed)
    plain = derive.prometheus_config(PROM, workers=1)
    assert all("vhost" not in j.get("params", {}) for j in plain["scrape_configs"])


def test_the_broker_urls_vhost_as_kombu_reads_it():
    from native.env import broker_parts

    assert broker_parts("amqp://u:p@127.0.0.1:5672//")["vhost"] == "/"
    assert broker_parts("amqp://u:p@127.0.0.1:5672")["vhost"] == "/"
    assert broker_parts("amqp://u:p@127.0.0.1:5672/celery-alerts")["vhost"] == "celery-alerts"
    assert broker_parts("amqp://u:p@127.0.0.1:5672/a%2Fb")["vhost"] == "a/b"
