"""Flower's options for this bundle: `celery -A worker.celery_app flower --conf=worker/flowerconfig.py`.

Flower applies FLOWER_* environment variables first and this file second, so every option here reads
its environment variable itself and only supplies the bundle's default. Options not named here
(FLOWER_BASIC_AUTH, FLOWER_AUTH, ...) come straight from the environment, untouched.
"""

import os


def _env(name, default):
    return os.environ.get("FLOWER_" + name.upper(), default)


def _flag(name, default):
    return str(_env(name, default)).strip().lower() in ("1", "true", "yes", "on")


port = int(_env("port", 5555))
address = _env("address", "127.0.0.1")
# The Broker page reads queues from RabbitMQ's management API.
broker_api = _env("broker_api", "http://guest:guest@127.0.0.1:15672/api/")
# Flower keeps ~6 KB per task: 10k recent tasks is ~60 MB instead of ~670 MB at its 100k default.
max_tasks = int(_env("max_tasks", 10000))
# Drop a dead (e.g. SIGKILLed) worker's series from /metrics after this many silent seconds.
purge_offline_workers = int(_env("purge_offline_workers", 60))
persistent = _flag("persistent", "false")
db = _env("db", "flower.db")
# With persistence on, save the state every minute too, not only at shutdown (a kill loses less).
state_save_interval = int(_env("state_save_interval", 60000 if persistent else 0))
# Flower turns an empty FLOWER_BASIC_AUTH into [""], i.e. "auth on, nobody can log in". Compose
# passes it empty in the dev profile, so empty means no basic auth here.
if not os.environ.get("FLOWER_BASIC_AUTH", "").strip(","):
    basic_auth = []

# Flower's own metrics per worker, without a series per task name on each worker, no *_created
# series, and its cheaper event handling (worker/flower_metrics.py). PER_TASK_FLOWER_METRICS=1 keeps
# Flower's series per worker and task name (small fleets; the mixin's cardinality.flower_task_series
# must then be true).
from worker import flower_metrics  # noqa: E402

flower_metrics.install(per_task=flower_metrics.per_task_wanted())
