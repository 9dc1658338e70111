"""Celery / SLOs: per objective and SLI, the objective, the SLI now, the error budget left over the
period and the burn rate per window (mixin/slo.py's recording rules; alerts in mixin/alerts/slo.py)."""

from mixin import slo
from mixin.dashboards.builder import Board, gauge, stat, target, thresholds, timeseries
from mixin.queries import num


def rows(b, objective, sli, ratio):
    """The three panels of one SLI."""
    selector = f'{{slo="{objective.name}", sli="{sli}", {b.scope}}}'
    shortest = slo.shortest(b.cfg)
    errors = slo.RECORD.format(window=shortest) + selector
    budget = num(round(1 - ratio, 10))
    period = b.cfg.slos.period
    title = f"{objective.name}: {slo.SLI_TEXT[sli]}"
    burns = "; ".join(
        f"{row.severity} at {num(row.factor)} over {row.long} and {row.short}" for row in b.cfg.slos.alerts
    )
    return [
        stat(
            f"{title}: SLI (objective {ratio:.2%})",
            [target(f"1 - {errors}")],
            description=f"The share of tasks that met the {slo.SLI_TEXT[sli]} objective over the last "
            f"{b.cfg.slos.windows[shortest]}; the objective is {ratio:.2%} over {period}.",
            unit="percentunit",
            steps=thresholds("red", (ratio, "green")),
            w=6,
        ),
        gauge(
            f"{title}: error budget left",
            [target(f"1 - avg_over_time({errors}[{period}]) / {budget}")],
            description=f"The error budget ({1 - ratio:.2%} of the tasks) not spent over the last {period}: "
            "100% = untouched, 0% = spent.",
            unit="percentunit",
            steps=thresholds("red", (0.25, "yellow"), (0.5, "green")),
            minimum=0,
            maximum=1,
            w=6,
        ),
        timeseries(
            f"{title}: burn rate",
            [target(f"{slo.RECORD.format(window=name)}{selector} / {budget}", name) for name in b.cfg.slos.windows],
            description="Error ratio over each window divided by the error budget: 1 spends the budget exactly "
            f"over the period. CeleryErrorBudgetBurn fires {burns}.",
            steps=thresholds("green", (1, "yellow"), (6, "red")),
            threshold_line=True,
            w=12,
        ),
    ]


def build(cfg):
    b = Board(cfg)
    panels = [p for objective, sli, ratio in slo.slis(cfg) for p in rows(b, objective, sli, ratio)]
    return b.dashboard(
        "slo",
        "Celery / SLOs",
        "Service-level objectives of the tasks: SLI, error budget left, burn rate per window.",
        panels,
    )
