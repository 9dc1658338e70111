"""The configurations the bench compares, each with the baseline its cost is measured against, and
`--variant` specs that add more."""

import json
import re
from dataclasses import dataclass, replace

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
# What the bundle changes for reliability (ack after the run, requeue on a lost pool process, prefetch 1,
# STARTED state): a configuration's monitoring cost is measured against a bare run with the same values.
RELIABILITY_KEYS = ("task_acks_late", "task_reject_on_worker_lost", "worker_prefetch_multiplier", "task_track_started")
# Prometheus's example configuration (and the one the Flower and exporter guides build on) scrapes
# every 15 s; the bundle scrapes every 5 s.
OFF_THE_SHELF_SCRAPE = "15s"


@dataclass(frozen=True)
class WorkerSpec:
    """One bench worker: node bench-w<index>, the queues it consumes ("" = celery), its prefetch
    multiplier and pool size (None = the configuration's)."""

    index: int = 1
    queues: str = ""
    prefetch: int | None = None
    concurrency: int | None = None


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
    baseline: str = "bare"  # the bare run with the same Celery settings: costs and ratios are to it
    worker_env: tuple = ()  # (NAME, value) pairs added to the worker's environment
    workers: tuple = ()  # WorkerSpec per worker; () = one worker, bench-w1, as the configuration says

    @property
    def is_baseline(self):
        return self.baseline == self.name


CONFIGS = {
    c.name: c
    for c in (
        Config("bare", label="bare Celery with the bundle's settings (events off, no monitors)", baseline="bare"),
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
            baseline="stock",
            label="off the shelf: Celery defaults + -E, `celery flower`, `celery-exporter`, default "
            "options, Prometheus every 15 s",
        ),
        # offshelf's baseline (run whenever offshelf is): bare with the Celery settings offshelf
        # has, so that its cost holds no saving of Celery's cheaper defaults. Next to bare, it is
        # also what the bundle's reliability settings cost.
        Config(
            "stock",
            label="bare with Celery's defaults (early ack, prefetch 4, no STARTED state)",
            conf=CELERY_DEFAULTS,
            baseline="stock",
        ),
    )
}


def reliability(conf):
    """The reliability settings among (name, value) pairs, as a dict."""
    return {k: v for k, v in conf if k in RELIABILITY_KEYS}


def baseline_for(config):
    """The bare configuration with config's reliability settings: bare, stock or a new bare+NAME."""
    changed = reliability(config.conf)
    if not changed:
        return CONFIGS["bare"]
    if changed == reliability(CELERY_DEFAULTS):
        return CONFIGS["stock"]
    name = "bare+" + config.name.split("+", 1)[-1]
    label = "bare with " + ",".join(f"{k}={v}" for k, v in changed.items())
    return Config(name, label=label, conf=tuple(changed.items()), baseline=name)


def with_baselines(names, configs=None):
    """names plus every baseline they need (each right after bare), in run order."""
    configs = configs or CONFIGS
    out = list(names)
    for name in names:
        base = configs[name].baseline
        if base not in out:
            out.insert(out.index("bare") + 1 if "bare" in out else 0, base)
    return out


SPEC_HELP = (
    "NAME:KEY=VALUE[,KEY=VALUE...] where KEY is a Celery setting (JSON value), flower.OPTION, "
    "exporter.OPTION or worker.OPTION (passed as --OPTION=VALUE; worker.FLAG=true as --FLAG), "
    "env.NAME (a variable of the worker's environment, e.g. env.WORKER_LATENCY_METRICS=0), "
    "scrape (Prometheus interval, e.g. 15s) or nice (0..19)"
)
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# Worker variables the worker itself checks at start: a bad value is refused here, before a run.
_SWITCHES = ("1", "0", "on", "off", "true", "false", "yes", "no")
_ENV_CHECKS = {"WORKER_LATENCY_METRICS": _SWITCHES, "WORKER_METRICS": _SWITCHES}


def _worker_env(key, raw):
    name, value = key[4:], raw.strip()
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"env.NAME must name an environment variable (A-Z, 0-9, _), got {name!r}")
    allowed = _ENV_CHECKS.get(name)
    if allowed and value.lower() not in allowed:
        raise ValueError(f"{name} must be one of {'/'.join(allowed)}, got {value!r}")
    return name, value


def variant(spec):
    """`NAME:KEY=VALUE[,KEY=VALUE...]` -> the full bundle with those changes, named full+NAME."""
    name, sep, changes = spec.partition(":")
    if not sep or not name.strip() or not changes.strip():
        raise ValueError(f"must be {SPEC_HELP}, got {spec!r}")
    conf, flower, exporter, worker, env, nice, scrape = [], [], [], [], [], 0, ""
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
        elif key.startswith("env."):
            env.append(_worker_env(key, raw))
        elif key.startswith("flower."):
            flower.append(f"--{key[7:]}={raw.strip()}")
        elif key.startswith("worker."):
            worker.append(f"--{key[7:]}" if value is True else f"--{key[7:]}={raw.strip()}")
        elif key.startswith("exporter."):
            exporter.append(f"--{key[9:]}={raw.strip()}")
        else:
            conf.append((key, value))
    config = Config(
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
        worker_env=tuple(env),
        scrape_interval=scrape,
    )
    return replace(config, baseline=baseline_for(config).name)
