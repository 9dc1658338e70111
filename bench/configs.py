"""The configurations the bench compares, and `--variant` specs that add more."""

import json
from dataclasses import dataclass

from celery.app.defaults import DEFAULTS

# Celery's own defaults for what the bundle changes (early ack, prefetch 4, no STARTED state, 5 s
# event queue TTL): "Celery as it comes, with task events on". Like Celery, the bundle sends no
# task-sent by default.
CELERY_DEFAULTS = tuple(
    (key, DEFAULTS[key])
    for key in (
        "task_acks_late",
        "task_reject_on_worker_lost",
        "worker_prefetch_multiplier",
        "task_track_started",
        "event_queue_ttl",
        "event_queue_expires",
    )
)
# Prometheus's example configuration (and the one the Flower and exporter guides build on) scrapes
# every 15 s; the bundle scrapes every 5 s.
OFF_THE_SHELF_SCRAPE = "15s"


@dataclass(frozen=True)
class Config:
    name: str
    events: bool = False  # task events (worker_send_task_events + task_send_sent_event)
    monitors: bool = False  # Flower + exporter + Prometheus scraping them
    worker_metrics: bool = False  # our worker /metrics (WORKER_METRICS=1), scraped by Prometheus
    label: str = ""
    conf: tuple = ()  # Celery settings this configuration changes, as (name, value) pairs
    nice: int = 0  # nice level of Flower and the exporter (a tuning experiment)
    flower_args: tuple = ()  # extra Flower options (--name=value), after the bundle's
    exporter_args: tuple = ()  # extra exporter options (--name=value), after the bundle's
    worker_args: tuple = ()  # extra worker options (--without-gossip, --heartbeat-interval=10)
    scrape_interval: str = ""  # Prometheus scrape interval ("" = the bundle's)
    off_the_shelf: bool = False  # Flower and exporter as their docs start them, not the bundle's


CONFIGS = {
    c.name: c
    for c in (
        Config("bare", label="bare Celery (events off, no monitors)"),
        Config("events", events=True, label="task events on, nobody consuming"),
        Config(
            "full",
            events=True,
            monitors=True,
            worker_metrics=True,
            label="full bundle: events + Flower + exporter + Prometheus + worker metrics",
        ),
        Config("full_wm_off", events=True, monitors=True, label="full bundle with WORKER_METRICS=0"),
        Config(
            "offshelf",
            events=True,
            monitors=True,
            conf=CELERY_DEFAULTS,
            off_the_shelf=True,
            scrape_interval=OFF_THE_SHELF_SCRAPE,
            label="off the shelf: Celery defaults + -E, `celery flower`, `celery-exporter`, default "
            "options, Prometheus every 15 s",
        ),
        # Not in the default run: bare with Celery's defaults for what the bundle changes for
        # reliability (ack after the task ran, prefetch 1).
        Config("stock", label="bare with Celery's defaults (early ack, prefetch 4)", conf=CELERY_DEFAULTS[:3]),
    )
}

SPEC_HELP = (
    "NAME:KEY=VALUE[,KEY=VALUE...] where KEY is a Celery setting (JSON value), flower.OPTION, "
    "exporter.OPTION or worker.OPTION (passed as --OPTION=VALUE; worker.FLAG=true as --FLAG), "
    "scrape (Prometheus interval, e.g. 15s) or nice (0..19)"
)


def variant(spec):
    """`NAME:KEY=VALUE[,KEY=VALUE...]` -> the full bundle with those changes, named full+NAME."""
    name, sep, changes = spec.partition(":")
    if not sep or not name.strip() or not changes.strip():
        raise ValueError(f"must be {SPEC_HELP}, got {spec!r}")
    conf, flower, exporter, worker, nice, scrape = [], [], [], [], 0, ""
    for change in changes.split(","):
        key, eq, raw = change.partition("=")
        key = key.strip()
        if not eq or not key or key.endswith("."):
            raise ValueError(f"must be {SPEC_HELP}, got {spec!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw.strip()
        if key == "nice":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 19:
                raise ValueError(f"nice must be 0..19, got {raw!r}")
            nice = value
        elif key == "scrape":
            if not (isinstance(value, str) and value[:-1].isdigit() and value[-1] in "sm" and int(value[:-1]) > 0):
                raise ValueError(f"scrape must be a Prometheus duration like 15s or 1m, got {raw!r}")
            scrape = value
        elif key.startswith("flower."):
            flower.append(f"--{key[7:]}={raw.strip()}")
        elif key.startswith("worker."):
            worker.append(f"--{key[7:]}" if value is True else f"--{key[7:]}={raw.strip()}")
        elif key.startswith("exporter."):
            exporter.append(f"--{key[9:]}={raw.strip()}")
        else:
            conf.append((key, value))
    return Config(
        f"full+{name.strip()}",
        events=True,
        monitors=True,
        worker_metrics=True,
        label=f"full bundle with {changes.strip()}",
        conf=tuple(conf),
        nice=nice,
        flower_args=tuple(flower),
        exporter_args=tuple(exporter),
        worker_args=tuple(worker),
        scrape_interval=scrape,
    )
