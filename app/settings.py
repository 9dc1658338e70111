"""Every setting the app reads, with its environment name and default."""

import os
import secrets
from pathlib import Path

APP_BIND = os.environ.get("APP_BIND", "127.0.0.1:8080")
# Links on the page point the user's browser at Flower.
FLOWER_PUBLIC_URL = os.environ.get("FLOWER_PUBLIC_URL", "http://localhost:5555").rstrip("/")
# Requests bigger than this are refused with 413 before they are parsed.
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", str(64 * 1024)))
# Alertmanager notifications kept in memory for GET /api/alerts.
ALERTS_KEPT = int(os.environ.get("ALERTS_KEPT", "1000"))
SECRET_KEY = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
# Alertmanager's webhook (POST /api/alerts) is accepted only with `Authorization: Bearer <this>`
# (Alertmanager's http_config.authorization); unset = every post is refused with 401.
ALERT_WEBHOOK_TOKEN = os.environ.get("ALERT_WEBHOOK_TOKEN", "")
# Largest webhook body accepted (413 above). Alertmanager's webhook sends at most max_alerts alerts.
ALERT_WEBHOOK_MAX_BYTES = int(os.environ.get("ALERT_WEBHOOK_MAX_BYTES", str(256 * 1024)))
# Runbooks served at /runbooks/<AlertName>, rendered from <RUNBOOKS_DIR>/<AlertName>.md.
RUNBOOKS_DIR = os.environ.get("RUNBOOKS_DIR") or str(Path(__file__).resolve().parent.parent / "docs" / "runbooks")
