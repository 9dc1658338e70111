"""Every query of every dashboard panel, with Grafana's variables filled in, for Prometheus's API.

Pure functions over dashboard JSON (only load_dashboards reads files). The live check runs:

    for dashboard in load_dashboards():
        empty = empty_by_design(dashboard)            # {panel title: reason}
        for title, panel, expr in iter_panel_queries(dashboard, {"task": "process_task"}):
            # GET /api/v1/query?query=<expr>: expect data, or none if panel in empty

Variables not given take the dashboard's "All" value (".*"), or their default (the job
variables). A value that is a str is used as
given (a name, or a regex such as "process_.*"); a list becomes "(a|b)" with regex characters
escaped, as Grafana formats a multi-value variable for =~. Grafana's built-ins take BUILTINS,
which the variables dict may override (e.g. {"__rate_interval": "5m"}).
"""

import json
import re
from pathlib import Path

from mixin.dashboards.builder import EMPTY_BY_DESIGN  # marks a panel that is empty in a healthy system

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "grafana" / "provisioning" / "dashboards"
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# $name, ${name}, ${name:format}, [[name]]
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")
_REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}]")


def load_dashboards(directory=DASHBOARD_DIR):
    """Every dashboard JSON in directory, in file-name order."""
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(Path(directory).glob("*.json"))]


def panels(dashboard):
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def format_value(value):
    if isinstance(value, str):
        return value
    escaped = [_REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), item) for item in value]
    return "(" + "|".join(escaped) + ")"


def dashboard_variables(dashboard, variables=None):
    """Built-ins, then each template variable's "All" value, then the given values."""
    values = dict(BUILTINS)
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("includeAll"):
            values[variable["name"]] = variable.get("allValue") or ".*"
        elif variable.get("current", {}).get("value"):
            values[variable["name"]] = variable["current"]["value"]  # e.g. a job variable's default
    for name, value in (variables or {}).items():
        values[name] = format_value(value)
    return values


def substitute(expr, values):
    """expr with every variable replaced; ValueError names any variable without a value."""

    def replace(match):
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise ValueError(f"no value for variable ${name} in: {expr}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def iter_panel_queries(dashboard_json, variables=None):
    """[(dashboard title, panel title, expr with variables substituted)] for every query."""
    values = dashboard_variables(dashboard_json, variables)
    return [
        (dashboard_json["title"], panel["title"], substitute(target["expr"], values))
        for panel in panels(dashboard_json)
        for target in panel.get("targets", [])
        if target.get("expr") and not target.get("hide")
    ]


def empty_by_design(dashboard_json):
    """{panel title: reason} for panels that return no series in a healthy system."""
    return {
        panel["title"]: panel["description"].split(EMPTY_BY_DESIGN, 1)[1].strip()
        for panel in panels(dashboard_json)
        if EMPTY_BY_DESIGN in panel.get("description", "")
    }
