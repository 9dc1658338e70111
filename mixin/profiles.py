"""Alerting profiles: the thresholds of mixin/config.py with windows and `for` durations scaled.

Every threshold knob is one of four kinds, told by its name:
  *_for     how long a condition must hold before the alert fires;
  *_window  a range-vector window (rate, deriv, avg_over_time, last_over_time);
  *_offset  how far back a baseline looks;
  anything else is a level (a ratio, a count, bytes per second) and never changes with a profile,
  except the minimum counts judged per window (PER_WINDOW), which scale with their window.

- standard:   the real rules, for a 5 s scrape (`python -m mixin` writes them into alerts/).
- fast:       what the live tests run: every window and `for` divided by 10 (with floors so a rate
              still sees several scrapes), baselines 2 minutes back.
- kubernetes: kube-prometheus-stack scrapes every 30 s; windows of at least 4 scrapes, `for` of at
              least 2 evaluations, evaluated every 30 s.
"""
import math
from dataclasses import dataclass, field

from mixin import config
from mixin.durations import fmt, seconds

KINDS = ("_for", "_window", "_offset")
# Counts judged per window: each scales with its window so the rate it stands for holds.
PER_WINDOW = {"success_min_tasks": "success_window", "events_lost_min_tasks": "events_lost_window"}


def kind(knob):
    return next((k for k in KINDS if knob.endswith(k)), None)


@dataclass(frozen=True)
class Profile:
    name: str
    scrape_interval: str
    evaluation_interval: str
    thresholds: dict = field(repr=False)
    description: str = ""


def check(thresholds):
    """Refuse thresholds the rules cannot be built from, naming the knob and the value."""
    problems = []
    for knob, value in thresholds.items():
        if kind(knob):
            try:
                seconds(value)
            except ValueError as exc:
                problems.append(f"{knob}: {exc}")
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            problems.append(f"{knob}: expected a non-negative number, got {value!r}")
    for knob in ("success_ratio_min", "throughput_ratio_min", "worker_cpu_ratio_max", "events_lost_ratio_max"):
        value = thresholds.get(knob)
        if isinstance(value, (int, float)) and not 0 < value <= 1:
            problems.append(f"{knob}: a ratio must be in (0, 1], got {value!r}")
    if not problems and seconds(thresholds["runtime_baseline_offset"]) < seconds(thresholds["runtime_for"]):
        problems.append(f"runtime_baseline_offset ({thresholds['runtime_baseline_offset']}) must be at least "
                        f"runtime_for ({thresholds['runtime_for']}), or a rise dilutes its own baseline")
    if problems:
        raise ValueError("bad thresholds in mixin/config.py:\n  " + "\n  ".join(problems))
    return thresholds


def scaled(thresholds, *, divisor=1, min_for=0, max_for=None, min_window=0, offset=None):
    """thresholds with windows and `for` divided by divisor (never below the floors)."""
    out = dict(thresholds)
    window_ratio = {}
    for knob, value in thresholds.items():
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
        window_ratio[knob] = new / secs
    for knob, window in PER_WINDOW.items():
        out[knob] = max(1, math.ceil(thresholds[knob] * window_ratio[window] - 1e-9))
    # A baseline must look back further than the alert waits, or the rise is in its own baseline.
    if seconds(out["runtime_baseline_offset"]) < seconds(out["runtime_for"]):
        out["runtime_baseline_offset"] = out["runtime_for"]
    return check(out)


def standard(thresholds=None):
    return Profile("standard", "5s", config.EVALUATION_INTERVAL, check(dict(thresholds or config.THRESHOLDS)),
                   "the real rules (5 s scrape)")


def fast(thresholds=None):
    t = scaled(thresholds or config.THRESHOLDS, divisor=10, min_for=5, max_for=60, min_window=30, offset=120)
    return Profile("fast", "5s", config.EVALUATION_INTERVAL, t, "live tests: windows and `for` / 10")


def kubernetes(thresholds=None):
    t = scaled(thresholds or config.THRESHOLDS, min_for=60, min_window=120)
    return Profile("kubernetes", "30s", "30s", t, "kube-prometheus-stack (30 s scrape)")


PROFILES = {"standard": standard, "fast": fast, "kubernetes": kubernetes}


def get(name, thresholds=None):
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name](thresholds)
