"""A private notification pipeline on free ports, for the notification tests and `make screenshots`:

  the real Alertmanager (Debian's prometheus-alertmanager) with alertmanager/alertmanager.yml rendered
  by native/derive.py (the same code as `make up`; only ports, SMTP TLS and group timings changed),
  -> a real SMTP server (aiosmtpd) that keeps every message,
  -> a local HTTP endpoint standing in for Slack's incoming-webhook URL,
  -> the app (app.main.create_app, served by Werkzeug) as the webhook receiver, with its bearer token.

Nothing leaves the machine: every address is 127.0.0.1.
"""

import email
import email.policy
import json
import shutil
import socket
import subprocess
import threading
import re
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from werkzeug.serving import make_server

from app.main import create_app
from native import derive, paths, poll
from native.ports import PORTS

AM_SOURCE = paths.REPO / "alertmanager" / "alertmanager.yml"
ALERTMANAGER = shutil.which("prometheus-alertmanager")
# What the rendered config links to: the public URL of the real stack's Alertmanager.
EXTERNAL_URL = f"http://localhost:{PORTS['alertmanager']}"
SMTP_USER = "alertmanager"  # the smtp_auth_username of alertmanager.yml
# Short timings so that a test takes seconds (the committed config keeps its own).
TIMINGS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}


# --- Alerts as Prometheus would send them, built from the rules file ----------------------------
RULES = {
    r["alert"]: r
    for g in yaml.safe_load((paths.REPO / "alerts" / "celery.rules.yml").read_text())["groups"]
    for r in g["rules"]
    if "alert" in r
}
VALUES = {"humanizePercentage": "62.5%", "humanize": "42", "humanizeDuration": "3.2s", "humanize1024": "2Mi"}


def rendered(text, labels):
    """A rule annotation as Prometheus renders it (labels and a made-up $value)."""
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), text)
    text = re.sub(r"\{\{\s*\$value\s*\|\s*(\w+)\s*\}\}", lambda m: VALUES[m.group(1)], text)
    return re.sub(r"\{\{\s*\$value\s*\}\}", "0", text)


def alert(alertname, /, **labels):
    rule = RULES[alertname]
    labels = {"alertname": alertname, **rule["labels"], **labels}
    return {
        "labels": labels,
        "annotations": {k: rendered(v, labels) for k, v in rule["annotations"].items()},
        "generatorURL": f"http://localhost:{PORTS['prometheus']}/graph",
    }


def ended(a):
    return {**a, "endsAt": (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, message, interval=0.2):
    try:
        return poll.until(predicate, timeout, interval, message)
    except poll.TimedOut as exc:
        raise AssertionError(str(exc)) from None


class Mailbox:
    """aiosmtpd handler: every accepted message, parsed; SMTP AUTH required with the right password."""

    def __init__(self, password):
        self.password = password
        self.messages = []
        self.logins = []

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == self.password
        self.logins.append((mechanism, auth_data.login.decode(), ok))
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": msg})
        return "250 Message accepted for delivery"


class _SlackHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.server.posts.append({"path": self.path, "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")  # what Slack's incoming webhooks answer
        except ValueError:
            self.send_response(400)
            self.end_headers()

    def log_message(self, *args):
        pass


class Rig:
    def __init__(self, workdir: Path, token="rig-token"):
        self.workdir = workdir
        self.token = token
        self.smtp_password = "rig-smtp-password"
        self._procs, self._stops = [], []

    # --- parts -------------------------------------------------------------------------------
    def _start_smtp(self):
        self.mailbox = Mailbox(self.smtp_password)
        port = free_port()
        controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=port,
            auth_required=True,
            auth_require_tls=False,
            authenticator=self.mailbox.authenticate,
            # aiosmtpd's LOGIN challenges ("User Name\0") are not the usual
            # "Username:" that Alertmanager answers; real relays offer PLAIN too.
            auth_exclude_mechanism=["LOGIN"],
        )
        controller.start()
        self._stops.append(controller.stop)
        self.smtp_port = port

    def _start_slack(self):
        server = ThreadingHTTPServer(("127.0.0.1", free_port()), _SlackHandler)
        server.posts = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._stops.append(server.shutdown)
        self.slack_posts = server.posts
        self.slack_url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX"

    def _start_app(self):
        app = create_app()
        app.config.update(ALERT_WEBHOOK_TOKEN=self.token)
        server = make_server("127.0.0.1", free_port(), app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._stops.append(server.shutdown)
        self.app_url = f"http://127.0.0.1:{server.server_port}"

    def render_config(self):
        """alertmanager.yml as `make up` renders it (native/derive.py), pointed at this rig."""
        env = {"SLACK_API_URL": self.slack_url, "SMTP_PASSWORD": self.smtp_password, "ALERT_WEBHOOK_TOKEN": self.token}
        config = yaml.safe_load(derive.alertmanager_config(AM_SOURCE, env, self.workdir / "secrets"))
        config["global"]["smtp_smarthost"] = f"127.0.0.1:{self.smtp_port}"
        config["global"]["smtp_require_tls"] = False  # aiosmtpd here speaks plain SMTP (AUTH still required)
        text = yaml.safe_dump(config, sort_keys=False).replace(
            f"http://{derive.HOST}:{PORTS['app']}/api/alerts", f"{self.app_url}/api/alerts"
        )
        config = yaml.safe_load(text)
        for route in [config["route"], *config["route"].get("routes", [])]:
            for key, value in TIMINGS.items():
                if key in route:
                    route[key] = value
        return config

    def _start_alertmanager(self):
        config = self.render_config()
        path = self.workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        self.am_url = f"http://127.0.0.1:{port}"
        self.am_log = (self.workdir / "alertmanager.log").open("w")
        proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={path}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                f"--web.external-url={EXTERNAL_URL}",
            ],
            stdout=self.am_log,
            stderr=subprocess.STDOUT,
        )
        self._procs.append(proc)

        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"Alertmanager exited: {(self.workdir / 'alertmanager.log').read_text()[-2000:]}")
            try:
                return requests.get(f"{self.am_url}/-/ready", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, 30, "Alertmanager to be ready")

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._start_smtp()
        self._start_slack()
        self._start_app()
        self._start_alertmanager()
        return self

    def stop(self):
        for proc in self._procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stop in reversed(self._stops):
            stop()
        if getattr(self, "am_log", None):
            self.am_log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- use ---------------------------------------------------------------------------------
    def post_alerts(self, alerts):
        """POST /api/v2/alerts: [{"labels", "annotations", "startsAt"?, "endsAt"?}]."""
        r = requests.post(f"{self.am_url}/api/v2/alerts", json=alerts, timeout=10)
        assert r.status_code == 200, r.text

    def webhook_notifications(self):
        return requests.get(f"{self.app_url}/api/alerts", timeout=10).json()["notifications"]

    def log(self):
        return (self.workdir / "alertmanager.log").read_text()
