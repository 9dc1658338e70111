"""Profiles: overlays that turn one Config into another, composed by name.

An overlay is a function Config -> Config. Levels (ratios, counts, bytes per second) never change
with a profile, except the minimum counts judged per window (PER_WINDOW), which scale with their
window; windows, `for` durations and offsets do (mixin/config.py names each knob's kind).

- standard:   the configuration as given (the bundle's: a 5 s scrape).
- fast:       what the live tests run: every window and `for` divided by 10 (with floors so a rate
              still sees several scrapes), baselines 2 minutes back, every group every 5 s.
- kubernetes: kube-prometheus-stack scrapes every 30 s: windows of at least 4 scrapes, `for` of at
              least 2 evaluations, evaluated every 30 s; and workers autoscaled by KEDA (keda).
- fleet:      hundreds of workers (docs/cardinality.md): the workers' latency histograms per queue
              only and with 9 bucket bounds (plus the SLOs' own), 37 series per queue on each worker
              instead of 64 per task name and queue. The workers must run with
              WORKER_LATENCY_METRICS=per_queue and TASK_LATENCY_BUCKETS set to the same bounds.
"""

import math

from mixin.config import Config, build, kind
from mixin.durations import fmt, seconds

# Counts judged per window: each scales with its window so the rate it stands for holds.
PER_WINDOW = {"success_min_tasks": "success_window", "events_lost_min_tasks": "events_lost_window"}


def scaled(thresholds, *, divisor=1, min_for=0, max_for=None, min_window=0, offset=None):
    """{knob: value} with windows and `for` divided by divisor (never below the floors)."""
    knobs = thresholds.knobs()
    out, ratio = {}, {}
    for knob, value in knobs.items():
        k = kind(knob)
        if k is None:
            continue
        secs = seconds(value)
        if k == "_window":
            new = max(math.ceil(secs / divisor), min_window)
        elif k == "_for":
            new = max(math.ceil(secs / divisor), min_for)
            new = min(new, max(max_for, min_for)) if max_for else new
        else:
            new = offset if offset is not None else secs
        out[knob] = fmt(new)
        ratio[knob] = new / secs
    for knob, window in PER_WINDOW.items():
        out[knob] = max(1, math.ceil(knobs[knob] * ratio[window] - 1e-9))
    # A baseline must look back further than the alert waits, or the rise is in its own baseline.
    if seconds(out["runtime_baseline_offset"]) < seconds(out["runtime_for"]):
        out["runtime_baseline_offset"] = out["runtime_for"]
    return out


def slo_windows(cfg, *, divisor=1, min_window=0):
    """The SLO windows scaled like every other window (their names stay)."""
    return {name: fmt(max(math.ceil(seconds(value) / divisor), min_window)) for name, value in cfg.slos.windows.items()}


def fast(cfg: Config) -> Config:
    t = scaled(cfg.thresholds, divisor=10, min_for=5, max_for=60, min_window=30, offset=120)
    return build(
        {
            "thresholds": t,
            "slos": {"windows": slo_windows(cfg, divisor=10, min_window=30), "evaluation_interval": "5s"},
            "cardinality": {"runtime_evaluation_interval": "5s"},
            "scrape_interval": "5s",
            "evaluation_interval": "5s",
        },
        base=cfg,
    )


def kubernetes(cfg: Config) -> Config:
    t = scaled(cfg.thresholds, min_for=60, min_window=120)
    return build(
        {
            "thresholds": t,
            "slos": {"windows": slo_windows(cfg, min_window=120)},
            "scrape_interval": "30s",
            "evaluation_interval": "30s",
        },
        base=cfg,
    )


def keda(cfg: Config) -> Config:
    return build({"autoscaling": {"keda": True}}, base=cfg)


# Coarse but spanning the same 5 ms .. 1 h range; 30 and 60 are the default SLOs' bounds.
FLEET_LATENCY_BUCKETS = (0.01, 0.05, 0.25, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0)


def fleet(cfg: Config) -> Config:
    slo_bounds = {target.seconds for o in cfg.slos.objectives for target in (o.queue_wait, o.runtime) if target}
    buckets = sorted(set(FLEET_LATENCY_BUCKETS) | slo_bounds)
    return build({"cardinality": {"worker_latency_by_task": False}, "latency": {"buckets": buckets}}, base=cfg)


PROFILES = {
    "standard": (),
    "fast": (fast,),
    "kubernetes": (kubernetes, keda),
    "fleet": (fleet,),
}


def apply(name, cfg=None):
    """cfg (default: the bundle's) with the named profile's overlays applied in order."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    cfg = cfg or Config()
    for overlay in PROFILES[name]:
        cfg = overlay(cfg)
    return cfg
