"""The Celery application shared by workers, Flower and the web app (`celery -A worker.celery_app`)."""

from celery import Celery

from worker import result_backend, settings

# Task events name the queue even without task-sent (worker/events.py).
app = Celery(
    "bundle",
    broker=settings.BROKER_URL,
    backend=settings.REDIS_URL,
    include=["worker.tasks"],
    events="worker.events:QueueNamingEvents",
)
result_backend.use_in(app)

app.conf.update(
    # Events: workers send them; producers send task-sent only when asked (TASK_SEND_SENT_EVENT).
    task_send_sent_event=settings.TASK_SEND_SENT_EVENT,
    worker_send_task_events=True,
    event_queue_ttl=settings.EVENT_QUEUE_TTL,
    event_queue_expires=settings.EVENT_QUEUE_EXPIRES,
    event_serializer=settings.EVENT_SERIALIZER,
    # A killed worker loses nothing: ack after the task ran, requeue if the pool child dies,
    # and hold at most one unacknowledged message per pool process.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=settings.WORKER_CONCURRENCY,
    # Memory containment: a pool process above the limit after a task is replaced by a fresh one
    # (its task finished and was acked first; late acks cover a process killed mid-task).
    worker_max_memory_per_child=settings.WORKER_MAX_MEMORY_PER_CHILD_MB * 1024 or None,
    worker_max_tasks_per_child=settings.WORKER_MAX_TASKS_PER_CHILD or None,
    task_track_started=True,
    result_expires=24 * 3600,
    # A Redis blip loses no result: retry storing final states for about half a minute.
    result_backend_always_retry=True,
    result_backend_max_retries=40,
    result_backend_max_sleep_between_retries_ms=2000,
    result_extended=True,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    # Don't let a lost broker hang a web request forever (the app answers 503 instead).
    broker_transport_options=settings.BROKER_TRANSPORT_OPTIONS,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)
from worker import events, latency, metrics  # noqa: F401,E402  (queue-naming events; publish-time header; worker hooks)
