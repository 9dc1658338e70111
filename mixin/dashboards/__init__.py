"""Grafana dashboards as code, rendered from a Config: `generate(cfg)` writes
grafana/provisioning/dashboards/*.json for the bundle's.

Targets Grafana 11.x: dashboard JSON schemaVersion 39, panel types timeseries, stat, gauge,
bargauge and table only (no AngularJS `graph`/`singlestat`, which Grafana 12 removed). Every
panel and query uses the datasource variable (default: the Config's datasource uid); every
selector, dashboard uid and colour threshold comes from the Config, and a dashboard shows only the
panels its sources feed (a broker dashboard only for a broker the Config scrapes). Panels that
aggregate over many series (every worker, every task) read the recording rules of mixin/records.py,
so a dashboard opened over days reads a few series per queue instead of every worker's; the others
read the raw series.

Output is deterministic (sorted keys, ids in panel order), and the JSON is committed; a test
regenerates it and fails when the committed files differ.
"""

import json
from pathlib import Path

from mixin.config import Config
from mixin.dashboards import broker, latency, overview, slo, tasks, workers

OUTPUT_DIR = Path(__file__).resolve().parents[2] / "grafana" / "provisioning" / "dashboards"
BUILDERS = {
    "overview": overview.build,
    "tasks": tasks.build,
    "workers": workers.build,
    "latency": latency.build,
    "slo": slo.build,
    "broker": broker.build,
    "redis_broker": broker.build_redis,
}
# Dashboards of one broker: rendered only when the Config scrapes that broker.
BROKER_OF = {"broker": "rabbitmq", "redis_broker": "redis"}


def render(dashboard):
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all(cfg: Config):
    """{file name: JSON text}; files are named by dashboard uid. A dashboard none of whose panels
    the Config's sources feed is left out."""
    boards = {
        key: build(cfg) for key, build in BUILDERS.items() if BROKER_OF.get(key, "") in ("", *cfg.sources.brokers)
    }
    return {f"{cfg.dashboards.uids[key]}.json": render(board) for key, board in boards.items() if board["panels"]}


def generate(cfg: Config, output_dir=OUTPUT_DIR):
    """Write every dashboard into output_dir; returns the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in build_all(cfg).items():
        path = output_dir / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
