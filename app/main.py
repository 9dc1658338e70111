"""Routes: the web form (/), the JSON API (/api/...), /healthz, /metrics, the alert webhook, the
alerts page (/alerts) and the runbooks (/runbooks/<AlertName>)."""

import collections
import datetime
import logging
import threading
import time
import uuid
from pathlib import Path

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from prometheus_client import Counter, disable_created_metrics
from prometheus_flask_exporter import PrometheusMetrics
from werkzeug.exceptions import HTTPException

from app import notifications, runbooks, settings
from app.submit import BrokerUnavailable, enqueue
from app.validation import FIELDS, TASKS, Submission, ValidationError, parse_submission
from worker import settings as worker_settings
from worker.celery_app import app as celery_app

log = logging.getLogger(__name__)

TASKS_SUBMITTED = Counter("app_tasks_submitted", "Tasks enqueued through the app", ["task"])
ALERTS_RECEIVED = Counter("app_alert_notifications", "Alertmanager notifications received", ["status"])


def error(status, message, field=None):
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return jsonify(body), status


def submit(sub):
    """The code path shared by the form and the API."""
    ids = enqueue(sub)
    TASKS_SUBMITTED.labels(sub.task).inc(len(ids))
    return ids


def lookup_backend():
    """The result backend the app reads states with: one attempt per lookup, so that a lookup answers
    at once (503 while Redis is down); only workers retry storing results (worker/celery_app.py)."""
    backend = type(celery_app.backend)(app=celery_app, url=celery_app.conf.result_backend)
    backend.always_retry = False
    return backend


def task_state(task_id, backend):
    result = celery_app.AsyncResult(task_id, backend=backend)
    state = result.state  # reads the backend; may raise if Redis is down
    body = {"task_id": task_id, "state": state, "flower_url": f"{settings.FLOWER_PUBLIC_URL}/task/{task_id}"}
    if state == "SUCCESS":
        body["result"] = result.result
    elif state == "FAILURE":
        body["error"] = {"type": type(result.result).__name__, "message": str(result.result)}
    if result.date_done:
        body["date_done"] = result.date_done.isoformat()
    return body


def create_app():
    flask_app = Flask(__name__)
    flask_app.config.update(
        MAX_CONTENT_LENGTH=settings.MAX_BODY_BYTES,
        SECRET_KEY=settings.SECRET_KEY,
        JSON_SORT_KEYS=False,
        ALERT_WEBHOOK_TOKEN=settings.ALERT_WEBHOOK_TOKEN,
        ALERT_WEBHOOK_MAX_BYTES=settings.ALERT_WEBHOOK_MAX_BYTES,
    )
    # No `*_created` series (one more per counter and histogram label set, read by nothing).
    disable_created_metrics()
    PrometheusMetrics(flask_app, group_by="url_rule", default_labels={})
    # The form carries a CSRF token; the JSON API needs Content-Type: application/json, which a
    # cross-site form cannot send without a CORS preflight that this app never allows.
    csrf = CSRFProtect(flask_app)
    flask_app.add_template_filter(
        lambda ts: datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "datetime_utc",
    )
    alerts = collections.deque(maxlen=settings.ALERTS_KEPT)
    alerts_lock = threading.Lock()
    backend = lookup_backend()

    @flask_app.context_processor
    def submission_limits():
        # The form shows each field's limits next to it, and its fault-mode fields only where allowed.
        return {"limits": worker_settings, "fault_injection": worker_settings.FAULT_INJECTION}

    @flask_app.errorhandler(HTTPException)
    def http_error(exc):
        if request.path.startswith("/api/") or exc.code in (413, 415):
            field = "body" if exc.code in (400, 413) else None
            return error(exc.code, exc.description or exc.name, field)
        return exc

    @flask_app.errorhandler(CSRFError)
    def csrf_error(exc):
        values = {k: getattr(Submission(), k) for k in FIELDS}
        message = "the form expired or was sent from another site: reload the page and submit again"
        return render_template(
            "index.html",
            values=values,
            tasks=TASKS,
            flower_url=settings.FLOWER_PUBLIC_URL,
            error={"field": "csrf_token", "message": message},
            submitted=None,
        ), 400

    @flask_app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unhandled error")
        return error(500, "internal error; see the app's log")

    @flask_app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @flask_app.post("/api/tasks")
    @csrf.exempt
    def api_submit():
        if not request.is_json:
            return error(415, "Content-Type must be application/json", "Content-Type")
        data = request.get_json(silent=True)
        if data is None:
            return error(400, "the body is not valid JSON", "body")
        try:
            sub = parse_submission(data)
        except ValidationError as exc:
            return error(422, exc.message, exc.field)
        try:
            ids = submit(sub)
        except BrokerUnavailable as exc:
            return jsonify(error=str(exc), enqueued=exc.enqueued), 503
        return jsonify(
            task=sub.task,
            count=len(ids),
            task_ids=ids,
            flower_urls=[f"{settings.FLOWER_PUBLIC_URL}/task/{i}" for i in ids],
        ), 202

    @flask_app.get("/api/tasks/<task_id>")
    def api_task(task_id):
        try:
            uuid.UUID(task_id)
        except ValueError:
            return error(400, "task id must be a UUID", "task_id")
        try:
            return jsonify(task_state(task_id, backend))
        except Exception as exc:  # the result backend (Redis) is down or unreachable
            log.warning("result backend unavailable: %s", exc)
            return error(503, f"the result backend is unavailable: {exc.__class__.__name__}")

    @flask_app.post("/api/alerts")
    @csrf.exempt
    def api_alerts_webhook():
        # Only Alertmanager posts here: its bearer token first, before the body is read.
        if not notifications.token_ok(request.headers.get("Authorization"), flask_app.config["ALERT_WEBHOOK_TOKEN"]):
            return error(
                401, "a valid `Authorization: Bearer <ALERT_WEBHOOK_TOKEN>` header is required", "Authorization"
            )
        request.max_content_length = flask_app.config["ALERT_WEBHOOK_MAX_BYTES"]
        if (request.content_length or 0) > request.max_content_length:
            return error(413, f"the body is larger than {request.max_content_length} bytes", "body")
        payload = request.get_json(silent=True, force=True)
        if payload is None:
            return error(400, "the body is not valid JSON", "body")
        try:
            notifications.validate(payload)
        except notifications.PayloadError as exc:
            return error(400, exc.message, exc.field)
        with alerts_lock:
            alerts.append({"received_at": time.time(), **payload})
        ALERTS_RECEIVED.labels(payload["status"]).inc()
        return jsonify(status="stored"), 200

    @flask_app.get("/api/alerts")
    def api_alerts_list():
        with alerts_lock:
            return jsonify(notifications=list(alerts))

    @flask_app.get("/alerts")
    def alerts_page():
        with alerts_lock:
            stored = list(alerts)
        shown = [notifications.view(n) for n in reversed(stored)]  # newest first
        return render_template(
            "alerts.html", notifications=shown, flower_url=settings.FLOWER_PUBLIC_URL, kept=settings.ALERTS_KEPT
        )

    @flask_app.get("/runbooks")
    @flask_app.get("/runbooks/")
    def runbooks_index():
        return render_template(
            "runbooks.html", names=runbooks.names(Path(settings.RUNBOOKS_DIR)), flower_url=settings.FLOWER_PUBLIC_URL
        )

    @flask_app.get("/runbooks/<path:name>")
    def runbook(name):
        try:
            title, body = runbooks.render(Path(settings.RUNBOOKS_DIR), name)
        except runbooks.UnknownRunbook:
            return error(404, f"no runbook named {name!r}; see /runbooks for the list", "name")
        return render_template("runbook.html", title=title, body=body, flower_url=settings.FLOWER_PUBLIC_URL)

    @flask_app.route("/", methods=["GET", "POST"])
    def index():
        values = {k: getattr(Submission(), k) for k in FIELDS}
        context = {
            "values": values,
            "tasks": TASKS,
            "flower_url": settings.FLOWER_PUBLIC_URL,
            "error": None,
            "submitted": None,
        }
        if request.method == "GET":
            return render_template("index.html", **context)
        form = request.form.to_dict()
        form.pop("csrf_token", None)  # checked by CSRFProtect before this view runs
        values.update(form)
        try:
            sub = parse_submission(form, from_text=True)
            ids = submit(sub)
        except ValidationError as exc:
            context["error"] = {"field": exc.field, "message": exc.message}
            return render_template("index.html", **context), 422
        except BrokerUnavailable as exc:
            context["error"] = {"field": None, "message": str(exc)}
            return render_template("index.html", **context), 503
        context["submitted"] = {"task": sub.task, "ids": ids, "task_num_start": sub.task_num_start}
        return render_template("index.html", **context), 201

    return flask_app
