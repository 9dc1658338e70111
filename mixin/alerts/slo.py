"""Burn-rate alerts of the service-level objectives (mixin/slo.py): for each objective, SLI and row
of cfg.slos.alerts (the SRE workbook's multi-window, multi-burn-rate table), both windows' error
ratio above factor x the error budget. The long window proves the burn is significant, the short
one that it still goes on (so the alert resolves soon after the problem stops)."""

from mixin import slo
from mixin.alerts.alert import Alert, pct
from mixin.durations import fmt, seconds
from mixin.queries import num


def burn(cfg, objective, sli, ratio, row):
    budget = 1 - ratio
    threshold = num(round(row.factor * budget, 10))
    period = cfg.slos.period
    selector = f'{{slo="{objective.name}", sli="{sli}"}}'
    long_, short = (slo.RECORD.format(window=w) + selector for w in (row.long, row.short))
    spent = pct(round(row.factor * seconds(cfg.slos.windows[row.long]) / seconds(period), 4))
    exhausted = fmt(max(1, round(seconds(period) / row.factor / 60)) * 60)
    what = slo.SLI_TEXT[sli]
    return Alert(
        name="CeleryErrorBudgetBurn",
        expr=f"{long_} > {threshold}\nand\n{short} > {threshold}",
        for_=None,
        severity=row.severity,
        dashboard="slo",
        labels={"slo": objective.name, "sli": sli, "long_window": row.long, "short_window": row.short},
        summary=f"SLO {objective.name}: the {what} objective burns its error budget {num(row.factor)}x too fast",
        description=(
            f"{{{{ $value | humanizePercentage }}}} of the tasks of SLO {objective.name} missed the {what} "
            f"objective over the last {row.long} (and still over the last {row.short}): {num(row.factor)} "
            f"times the error budget of {pct(round(budget, 6))} (objective {pct(ratio)} over {period}). At this "
            f"rate the budget of the whole {period} is gone in {exhausted}; {spent} of it is spent already."
        ),
        when=(
            f"an SLO's error ratio exceeds {num(row.factor)}x its error budget over {row.long} and over "
            f"{row.short} ({row.severity})"
        ),
    )


def budget_burn(cfg, q):
    return [burn(cfg, objective, sli, ratio, row) for objective, sli, ratio in slo.slis(cfg) for row in cfg.slos.alerts]


ALERTS = (budget_burn,)
