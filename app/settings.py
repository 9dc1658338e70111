"""Every setting the app reads, with its environment name and default."""
import os
import secrets

APP_BIND = os.environ.get("APP_BIND", "127.0.0.1:8080")
# Links on the page point the user's browser at Flower.
FLOWER_PUBLIC_URL = os.environ.get("FLOWER_PUBLIC_URL", "http://localhost:5555").rstrip("/")
# Requests bigger than this are refused with 413 before they are parsed.
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", str(64 * 1024)))
# Alertmanager notifications kept in memory for GET /api/alerts.
ALERTS_KEPT = int(os.environ.get("ALERTS_KEPT", "1000"))
SECRET_KEY = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
