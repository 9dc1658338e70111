"""A dashboard shows each alerting signal exactly as its alert computes it: the same series, read
over the same window (the recording rule's), whatever the panel adds for its variables. A panel may
read a recording rule instead (mixin/records.py): what it reads is then what that rule reads, down
to the raw series."""

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "grafana" / "provisioning" / "dashboards"
RULES = yaml.safe_load((REPO / "alerts" / "celery.rules.yml").read_text())
RECORDED = {r["record"]: r["expr"] for g in RULES["groups"] for r in g["rules"] if "record" in r}
# Every series read by an expression, with its range window ('' for an instant read): a selector in
# braces, or a recording rule's name (it has colons) with or without them.
SERIES = re.compile(r"([a-zA-Z_:][\w:]*)\{[^}]*\}(?:\[([^\]]+)\])?|\b([a-zA-Z_]\w*:[\w:]+)(?:\[([^\]]+)\])?")

# (dashboard file, panel title, the recording rule its alert reads)
SIGNALS = [
    ("celery-overview.json", "Success rate", "celery:success:ratio"),
    ("celery-tasks.json", "Success rate", "celery:success:ratio"),
    ("celery-overview.json", "Queue depth", "celery:queue_messages_ready:sum"),
    ("celery-overview.json", "Queue depth per queue", "celery:queue_messages_ready:sum"),
    ("celery-overview.json", "Worker CPU", "celery:worker_cpu_utilisation:ratio"),
    ("celery-workers.json", "CPU", "celery:worker_cpu_utilisation:ratio"),
    ("celery-workers.json", "Memory growth", "celery:worker_memory_rss_bytes:deriv"),
]


def series(expr):
    """The raw series an expression reads, through the recording rules it reads."""
    out = set()
    for raw, raw_window, record, record_window in SERIES.findall(expr):
        name, window = raw or record, raw_window or record_window
        if name in RECORDED:
            out |= series(RECORDED[name])
        else:
            out.add((name, window or ""))
    return out


def panel_exprs(file, title):
    panels = json.loads((DASHBOARDS / file).read_text())["panels"]
    found = [t["expr"] for p in panels if p["title"] == title for t in p["targets"]]
    assert found, f"{file} has no panel {title!r}"
    return found


@pytest.mark.parametrize("file,title,record", SIGNALS, ids=lambda x: x if isinstance(x, str) else "")
def test_panel_reads_what_the_alert_reads(file, title, record):
    want = series(RECORDED[record])
    assert want
    for expr in panel_exprs(file, title):
        assert series(expr) == want, f"{file} / {title}: {expr}\n  reads {series(expr)}, the alert reads {want}"
