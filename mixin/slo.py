"""Service-level objectives: each objective's SLIs recorded as error ratios over the standard
windows, the input of the burn-rate alerts (mixin/alerts/slo.py) and the SLO dashboard.

SLIs (good events / valid events; the error ratio is 1 - SLI):
- success: tasks that succeeded among those that finished (the celery-exporter's counters);
- queue_wait, runtime: tasks whose stage took less than the objective's bound, from the workers'
  own histograms (worker/latency.py); the bound is a bucket bound, so the count is exact.

Recording rules `celery:slo_errors:ratio_rate<window>` with labels `slo` and `sli`, one per window
of cfg.slos.windows; a profile shortens the durations and keeps the names. The shortest window is
computed from the raw series; the longer ones average it over their window (as Sloth does): one
series per SLI instead of every task's counters over days, in a group of their own evaluated every
cfg.slos.evaluation_interval.
"""

from mixin import records
from mixin.config import Config, Objective
from mixin.durations import seconds
from mixin.queries import Queries

RECORD = "celery:slo_errors:ratio_rate{window}"
SLI_TEXT = {"success": "success", "queue_wait": "queue wait", "runtime": "runtime"}


def available(cfg: Config, sli):
    """Whether the Config has the source an SLI is computed from."""
    return cfg.sources.exporter if sli == "success" else cfg.sources.worker_metrics


def slis(cfg: Config):
    """(objective, sli kind, objective ratio) for every SLI the Config can compute."""
    return [(o, sli, ratio) for o in cfg.slos.objectives for sli, ratio in o.slis().items() if available(cfg, sli)]


def matchers(objective: Objective, sli):
    """The objective's task and queue selection, in the labels of the SLI's source."""
    task, queue = ("name", "queue_name") if sli == "success" else ("task", "queue")
    return [f'{label}=~"{value}"' for label, value in ((task, objective.task), (queue, objective.queue)) if value]


def error_ratio(q: Queries, objective: Objective, sli, window):
    scope = ", ".join(q.cfg.labels.scope)
    m = matchers(objective, sli)
    if sli == "success":
        return f"1 - (\n{success_ratio(q, window, m, scope)}\n)"
    bound = getattr(objective, sli).seconds
    return q.stage_share_above(sli, bound, window, *m, by=scope)


def success_ratio(q: Queries, window, m, scope):
    """From the per-task records when they cover the same window (the exporter's counters are then
    not rated again), else from the raw counters."""
    if seconds(window) != seconds(q.cfg.thresholds.success_window):
        return q.success_ratio(window, *m, by=scope)
    selector = q.sel("exporter", *m)
    succeeded = f"sum by ({scope}) ({records.TASK_SUCCEEDED}{selector})"
    return records.ratio_or_zero(succeeded, f"sum by ({scope}) ({records.TASK_FINISHED}{selector})")


def shortest(cfg: Config):
    return min(cfg.slos.windows, key=lambda name: seconds(cfg.slos.windows[name]))


def recording_rules(cfg: Config, q: Queries):
    """The shortest window's error ratios, from the raw series (the fast group). `>= 0` drops the
    NaN of a window without tasks (0 / 0): the longer windows average these samples, and one NaN
    would make a whole window NaN, blind to a burn, for as long as it lasts."""
    name = shortest(cfg)
    return [
        {
            "record": RECORD.format(window=name),
            "expr": f"(\n{error_ratio(q, objective, sli, cfg.slos.windows[name])}\n) >= 0",
            "labels": {"slo": objective.name, "sli": sli},
        }
        for objective, sli, _ in slis(cfg)
    ]


def window_rules(cfg: Config):
    """Every longer window's error ratios, averaged from the shortest one's (their own group)."""
    base = shortest(cfg)
    return [
        {
            "record": RECORD.format(window=name),
            "expr": f'avg_over_time({RECORD.format(window=base)}{{slo="{objective.name}", sli="{sli}"}}[{window}])',
            "labels": {"slo": objective.name, "sli": sli},
        }
        for objective, sli, _ in slis(cfg)
        for name, window in cfg.slos.windows.items()
        if name != base
    ]
