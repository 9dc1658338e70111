"""The alerts, by area (tasks, queues, workers, pipeline), rendered from a Config.

Each area module has one small function per alert: it takes the Config and its Queries and returns
the Alert (a list for alerts rendered once per objective), or None when the sources it reads are
not in the Config (a source the user does not run
never pages). `build(cfg)` collects them, drops the alerts the Config disables and applies its
severity overrides; `Alert.rule(cfg)` writes the Prometheus rule with the Config's links and labels.
"""

from dataclasses import replace

from mixin.alerts import pipeline, queues, slo, tasks, workers
from mixin.alerts.alert import Alert
from mixin.config import Config
from mixin.queries import Queries

AREAS = (tasks, queues, workers, pipeline, slo)
__all__ = ["Alert", "build", "names"]


def build(cfg: Config):
    """Every alert the Config enables, with its severity as configured, in a stable order."""
    q = Queries(cfg)
    out = []
    for area in AREAS:
        for make in area.ALERTS:
            made = make(cfg, q)
            for alert in made if isinstance(made, list) else [made]:
                if alert is None or not cfg.alert(alert.name).enabled:
                    continue
                severity = cfg.alert(alert.name).severity
                out.append(replace(alert, severity=severity) if severity else alert)
    return out


def names(cfg=None):
    """The names of the alerts a Config renders, once each (the bundle's renders them all)."""
    return list(dict.fromkeys(a.name for a in build(cfg or Config())))
