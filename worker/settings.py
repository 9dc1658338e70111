"""Every setting the worker side reads, with its environment name and default."""
import os

# The guide's name for the broker URL.
RMQ_URL = os.environ.get("RMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# Each worker serves its own /metrics here (native mode gives worker i the port 9191 + i - 1).
WORKER_METRICS_ADDR = os.environ.get("WORKER_METRICS_ADDR", "127.0.0.1")
WORKER_METRICS_PORT = int(os.environ.get("WORKER_METRICS_PORT", "9191"))
WORKER_CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "2"))

# Event consumers (Flower, the exporter) must not lose events when they lag: Celery's default
# event_queue_ttl of 5 s lets RabbitMQ drop them silently (measured: 3-8 % lost at ~950 tasks/s).
EVENT_QUEUE_TTL = float(os.environ.get("EVENT_QUEUE_TTL", "60"))
EVENT_QUEUE_EXPIRES = float(os.environ.get("EVENT_QUEUE_EXPIRES", "120"))
# Serializer of Celery events (json or msgpack): every producer and every consumer must agree, so the
# exporter (exporter/run_exporter.py) reads the same variable.
EVENT_SERIALIZER = os.environ.get("EVENT_SERIALIZER", "json")

# Upper bounds the app enforces, so one request cannot bury the workers.
MAX_TASKS_PER_REQUEST = int(os.environ.get("MAX_TASKS_PER_REQUEST", "1000"))
MAX_TIMEOUT_SECONDS = float(os.environ.get("MAX_TIMEOUT_SECONDS", "600"))
MAX_MEMORY_MB_PER_TASK = int(os.environ.get("MAX_MEMORY_MB_PER_TASK", "256"))
