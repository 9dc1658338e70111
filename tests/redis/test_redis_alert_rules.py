"""The queue alerts (backlog, growing, no consumer) fire on a Redis broker's series too: promtool runs
the committed rules against the redis_exporter's and celery-exporter's series, no RabbitMQ series."""

import shutil
import subprocess

import pytest
import yaml

from native import paths

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run `make deps`")

DEPTH = 'redis_key_size{job="redis_broker", instance="redis_exporter:9121", db="db0", key="celery"}'
UNACKED = 'redis_key_size{job="redis_broker", instance="redis_exporter:9121", db="db0", key="unacked"}'
UP = 'redis_up{job="redis_broker", instance="redis_exporter:9121"}'
WORKERS = 'celery_active_worker_count{job="celery_exporter", instance="celery_exporter:9808", queue_name="celery"}'
QUEUE = {"job": "redis_broker", "queue": "celery"}


def alert_names(doc, name):
    return [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == name][0]


def run(tmp_path, series, tests):
    rules = yaml.safe_load((paths.REPO / "alerts" / "celery.rules.yml").read_text())
    doc = {
        "rule_files": [str(paths.REPO / "alerts" / "celery.rules.yml")],
        "evaluation_interval": "5s",
        "tests": [{"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series], **tests}],
    }
    # Alerts as the ALERTS series (firing), so that annotations need not be restated here.
    for t in doc["tests"][0].pop("alert_rule_test", []):
        samples = [
            {
                "labels": "ALERTS"
                + "{"
                + ", ".join(
                    f'{k}="{v}"'
                    for k, v in {
                        "alertname": t["alertname"],
                        "alertstate": "firing",
                        **alert_names(rules, t["alertname"])["labels"],
                        **a["exp_labels"],
                    }.items()
                )
                + "}",
                "value": 1,
            }
            for a in t["exp_alerts"]
        ]
        doc["tests"][0].setdefault("promql_expr_test", []).append(
            {
                "expr": f'ALERTS{{alertname="{t["alertname"]}", alertstate="firing"}}',
                "eval_time": t["eval_time"],
                "exp_samples": samples,
            }
        )
    path = tmp_path / "redis.test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_backlog_and_growth_fire_on_the_redis_queue_list(tmp_path):
    run(
        tmp_path,
        [(DEPTH, "0+10x30"), (UNACKED, "2x30"), (UP, "1x30"), (WORKERS, "3x30")],
        {
            "promql_expr_test": [
                {
                    "expr": "celery:queue_messages_ready:sum",
                    "eval_time": "10m",
                    "exp_samples": [
                        {"labels": 'celery:queue_messages_ready:sum{job="redis_broker", queue="celery"}', "value": 100}
                    ],
                },
                {
                    "expr": "celery:queue_consumers:sum",
                    "eval_time": "10m",
                    "exp_samples": [
                        {"labels": 'celery:queue_consumers:sum{job="redis_broker", queue="celery"}', "value": 3}
                    ],
                },
            ],
            "alert_rule_test": [
                {"alertname": "CeleryQueueBacklog", "eval_time": "10m", "exp_alerts": [{"exp_labels": QUEUE}]},
                {"alertname": "CeleryQueueNoConsumer", "eval_time": "10m", "exp_alerts": []},
            ],
        },
    )


def test_no_consumer_fires_when_no_worker_consumes_the_redis_queue(tmp_path):
    run(
        tmp_path,
        [(DEPTH, "5x30"), (UP, "1x30"), (WORKERS, "0x30")],
        {
            "alert_rule_test": [
                {"alertname": "CeleryQueueNoConsumer", "eval_time": "10m", "exp_alerts": [{"exp_labels": QUEUE}]},
                {"alertname": "CeleryQueueBacklog", "eval_time": "10m", "exp_alerts": []},
            ],
        },
    )


def test_rabbitmq_mode_series_alone_do_not_produce_redis_consumers(tmp_path):
    """Without the redis_broker job, the exporter's worker count adds no consumer series."""
    run(
        tmp_path,
        [(WORKERS, "3x30")],
        {
            "promql_expr_test": [{"expr": "celery:queue_consumers:sum", "eval_time": "5m", "exp_samples": []}],
        },
    )
