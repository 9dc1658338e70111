"""One alerting rule as the mixin builds it, and how it becomes a Prometheus rule for a Config."""

from dataclasses import dataclass, field

from mixin.config import Config


@dataclass(frozen=True, kw_only=True)
class Alert:
    name: str
    expr: str
    for_: str | None
    severity: str
    dashboard: str  # key of cfg.dashboards.uids
    summary: str
    description: str
    when: str  # "fires when ..." in plain words, for the docs' alert table and the runbooks
    # Task alerts link to Flower's task list, filtered by the task's name and this state.
    flower_state: str | None = None
    # Labels of this rule besides severity (e.g. the SLO an alert is about).
    labels: dict = field(default_factory=dict)

    def rule(self, cfg: Config):
        rule = {"alert": self.name, "expr": self.expr}
        if self.for_:
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity, **self.labels, **cfg.rule_labels}
        notes = {"summary": self.summary, "description": self.description}
        if cfg.urls.runbook:
            notes["runbook_url"] = cfg.urls.runbook.replace("{alert}", self.name)
        if cfg.urls.grafana:
            notes["dashboard_url"] = f"{cfg.urls.grafana}/d/{cfg.dashboards.uids[self.dashboard]}"
        if self.flower_state and cfg.urls.flower and cfg.sources.flower:
            notes["flower_url"] = f"{cfg.urls.flower}/tasks?name={{{{ $labels.name }}}}&state={self.flower_state}"
        rule["annotations"] = notes
        return rule


def pct(ratio):
    return f"{ratio * 100:g}%"
