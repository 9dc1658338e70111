"""Grafana dashboards as code: `generate()` writes grafana/provisioning/dashboards/*.json.

Targets Grafana 11.x: dashboard JSON schemaVersion 39, panel types timeseries, stat, gauge,
bargauge and table only (no AngularJS `graph`/`singlestat`, which Grafana 12 removed). Every
panel and query uses the provisioned datasource uid (mixin.config.DATASOURCE_UID); every selector,
dashboard uid and colour threshold comes from mixin.config. Queries use raw metrics only, so the
dashboards do not depend on recording-rule names.

Output is deterministic (sorted keys, ids in panel order), and the JSON is committed; a test
regenerates it and fails when the committed files differ.
"""

import json
from pathlib import Path

from mixin import config
from mixin.dashboards import broker, overview, tasks, workers

OUTPUT_DIR = Path(__file__).resolve().parents[2] / "grafana" / "provisioning" / "dashboards"
BUILDERS = {"overview": overview.build, "tasks": tasks.build, "workers": workers.build,
            "broker": broker.build, "redis_broker": broker.build_redis}


def render(dashboard):
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all():
    """{file name: JSON text}; files are named by dashboard uid."""
    return {f"{config.DASHBOARD_UIDS[key]}.json": render(build())
            for key, build in BUILDERS.items()}


def generate(output_dir=OUTPUT_DIR):
    """Write every dashboard into output_dir; returns the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in build_all().items():
        path = output_dir / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths

