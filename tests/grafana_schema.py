"""Dashboards checked against Grafana's own schema, without a Grafana: the typed models of
grafana-foundation-sdk (generated from Grafana's schemas, one model per panel plugin and query type)
decode each dashboard and encode it back. A key the schema does not know is dropped on the way, a
value of the wrong shape comes back changed; either is reported with its path."""

import json

from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

register_default_plugins()


def _plain(model):
    return json.loads(json.dumps(model.to_json(), default=lambda o: o.to_json() if hasattr(o, "to_json") else o))


def _compare(given, back, path, out):
    if isinstance(given, dict) and isinstance(back, dict):
        for key, value in given.items():
            if key not in back:
                out.append(f"{path}/{key}: not in Grafana's schema")
            else:
                _compare(value, back[key], f"{path}/{key}", out)
    elif isinstance(given, list) and isinstance(back, list) and len(given) == len(back):
        for i, (a, b) in enumerate(zip(given, back, strict=True)):
            _compare(a, b, f"{path}[{i}]", out)
    elif given != back and not (isinstance(given, (int, float)) and isinstance(back, (int, float)) and given == back):
        out.append(f"{path}: {given!r} comes back as {back!r}")


def problems(dashboard: dict):
    """What Grafana's schema does not accept in the dashboard, as 'path: problem' lines."""
    out = []
    _compare(dashboard, _plain(Dashboard.from_json(dashboard)), dashboard.get("uid", ""), out)
    return out
