"""Alertmanager's webhook notifications: the payload check, and what the /alerts page shows of them.

Alertmanager (webhook_config, payload version 4) posts
  {"version": "4", "status": "firing|resolved", "receiver": ..., "groupLabels": {...},
   "commonLabels": {...}, "commonAnnotations": {...}, "externalURL": ..., "truncatedAlerts": n,
   "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}]}
"""

import hmac
from urllib.parse import quote

STATUSES = ("firing", "resolved")
# Labels that tell an on-call engineer *what* is affected, in the order they are shown.
KEY_LABELS = (
    "name",
    "task",
    "queue",
    "queue_name",
    "vhost",
    "worker",
    "hostname",
    "instance",
    "job",
    "cluster",
    "namespace",
)
LINKS = (("runbook_url", "Runbook"), ("dashboard_url", "Dashboard"), ("flower_url", "Flower"))


class PayloadError(ValueError):
    def __init__(self, message, field):
        super().__init__(message)
        self.message, self.field = message, field


def token_ok(header, token):
    """Authorization: Bearer <token>, compared in constant time; no token configured = nobody."""
    if not token or not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def _str_map(value, field):
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError("must be an object of string values", field)
    return value


def validate(payload):
    """Raise PayloadError(message, field) unless payload is an Alertmanager webhook notification."""
    if not isinstance(payload, dict):
        raise PayloadError("expected an Alertmanager webhook payload (a JSON object)", "body")
    if payload.get("version") != "4":
        raise PayloadError('expected version "4" of Alertmanager\'s webhook payload', "version")
    if payload.get("status") not in STATUSES:
        raise PayloadError("must be firing or resolved", "status")
    if not isinstance(payload.get("receiver"), str):
        raise PayloadError("must be a string", "receiver")
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        _str_map(payload.get(key, {}), key)
    if not isinstance(payload.get("externalURL", ""), str):
        raise PayloadError("must be a string", "externalURL")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise PayloadError("must be a non-empty list of alerts", "alerts")
    for i, alert in enumerate(alerts):
        field = f"alerts[{i}]"
        if not isinstance(alert, dict):
            raise PayloadError("must be an object", field)
        if alert.get("status") not in STATUSES:
            raise PayloadError("must be firing or resolved", f"{field}.status")
        labels = _str_map(alert.get("labels"), f"{field}.labels")
        if not labels.get("alertname"):
            raise PayloadError("must have an alertname", f"{field}.labels")
        _str_map(alert.get("annotations", {}), f"{field}.annotations")
        for key in ("startsAt", "endsAt", "generatorURL", "fingerprint"):
            if not isinstance(alert.get(key, ""), str):
                raise PayloadError("must be a string", f"{field}.{key}")
    return payload


def _when(stamp):
    """Alertmanager's RFC 3339 time (nanoseconds, Z) to seconds; its zero time ("0001-...") to ""."""
    if not stamp or stamp.startswith("0001-"):
        return ""
    return stamp[:19].replace("T", " ") + (" UTC" if stamp.endswith("Z") else "")


def _http(url):
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def silence_url(external_url, labels):
    """Alertmanager's "new silence" form, pre-filled with the alert's labels."""
    base = _http(external_url)
    if not base:
        return None
    matchers = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{base.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}"


def view(notification):
    """One stored notification as the /alerts page shows it."""
    alerts = []
    for alert in notification["alerts"]:
        labels, ann = alert["labels"], alert.get("annotations", {})
        links = [(title, _http(ann.get(key))) for key, title in LINKS]
        links.append(("Silence", silence_url(notification.get("externalURL"), labels)))
        alerts.append(
            {
                "name": labels["alertname"],
                "status": alert["status"],
                "severity": labels.get("severity", "none"),
                "summary": ann.get("summary", ""),
                "description": ann.get("description", ""),
                "labels": [(k, labels[k]) for k in KEY_LABELS if labels.get(k)],
                "starts_at": _when(alert.get("startsAt", "")),
                "ends_at": _when(alert.get("endsAt", "")),
                "links": [(title, url) for title, url in links if url],
            }
        )
    return {
        "received_at": notification["received_at"],
        "status": notification["status"],
        "receiver": notification["receiver"],
        "count": len(alerts),
        "truncated": notification.get("truncatedAlerts", 0),
        "alerts": alerts,
    }
