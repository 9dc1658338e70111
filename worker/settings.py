"""Every setting the worker side reads, with its environment name and default."""

import os


def _env(name, default):
    """The variable's value, or the default when it is unset or empty (compose passes empty ones)."""
    return os.environ.get(name) or default


def _number(name, default, kind=int):
    """A whole (kind=int) or decimal (float) number from the environment, the default when unset or
    empty; ValueError naming the variable and its value otherwise."""
    text = _env(name, str(default))
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, got {text!r}") from None


# The guide's name for the broker URL.
RMQ_URL = os.environ.get("RMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# One broker URL for every process (app, workers, Flower, exporter): amqp:// (RabbitMQ, the default,
# from RMQ_URL) or redis:// (native mode sets it from BROKER=redis; results stay on REDIS_URL).
BROKER_URL = os.environ.get("BROKER_URL") or RMQ_URL

# Each worker serves its own /metrics here (native mode gives worker i the port 9191 + i - 1).
WORKER_METRICS_ADDR = os.environ.get("WORKER_METRICS_ADDR", "127.0.0.1")
WORKER_METRICS_PORT = _number("WORKER_METRICS_PORT", 9191)
WORKER_CONCURRENCY = _number("WORKER_CONCURRENCY", 2)

# Event consumers (Flower, the exporter) must not lose events when they lag: Celery's default
# event_queue_ttl of 5 s lets RabbitMQ drop them silently (tests/reliability measure the loss).
EVENT_QUEUE_TTL = _number("EVENT_QUEUE_TTL", 60, float)
EVENT_QUEUE_EXPIRES = _number("EVENT_QUEUE_EXPIRES", 120, float)
# Publishers send a task-sent event per task (Celery's task_send_sent_event). Off: the app counts its
# submissions itself, the workers measure the queue wait, and their task-received events name the
# queue (worker/events.py). On: the celery-exporter's celery_task_sent_total and Flower's PENDING
# tasks, for about 0.5 ms of CPU per task over the publisher, the broker and both monitors.
TASK_SEND_SENT_EVENT = os.environ.get("TASK_SEND_SENT_EVENT", "0").strip().lower() in ("1", "on", "true", "yes")
# Serializer of Celery events (json or msgpack): every producer and every consumer must agree, so the
# exporter (exporter/run_exporter.py) reads the same variable.
EVENT_SERIALIZER = os.environ.get("EVENT_SERIALIZER", "json")
# A worker sends its task events in batches (`task.multi` messages) at most this many seconds after
# the first of them. Celery flushes at the event loop's next turn, which with prefetch 1 is one or
# two events per message: every message costs the worker, the broker and each monitor a fixed share.
# 0: Celery's behaviour. The events keep the time they happened at.
EVENT_FLUSH_SECONDS = _number("EVENT_FLUSH_SECONDS", 0.1, float)
if EVENT_FLUSH_SECONDS < 0:
    raise ValueError(f"EVENT_FLUSH_SECONDS must be 0 or more, got {EVENT_FLUSH_SECONDS:g}")
# ... or as soon as this many are waiting (Celery's 24 would send ten messages per flush at 800
# tasks/s); an event is under 2 KB, its arguments' repr cut at 1 KB.
EVENT_BATCH_MAX = 256

# Upper bounds the app enforces, so one request cannot bury the workers.
MAX_TASKS_PER_REQUEST = _number("MAX_TASKS_PER_REQUEST", 1000)
MAX_TIMEOUT_SECONDS = _number("MAX_TIMEOUT_SECONDS", 600, float)
MAX_MEMORY_MB_PER_TASK = _number("MAX_MEMORY_MB_PER_TASK", 256)

# Redis as broker: a message a worker took but did not acknowledge (late acks) goes back to its queue
# only after this many seconds, e.g. when the worker was SIGKILLed. It must exceed the longest task
# (MAX_TIMEOUT_SECONDS), or a task still running is delivered a second time to another worker.
VISIBILITY_TIMEOUT = _number("VISIBILITY_TIMEOUT", MAX_TIMEOUT_SECONDS + 60, float)
if VISIBILITY_TIMEOUT <= MAX_TIMEOUT_SECONDS:
    raise ValueError(
        f"VISIBILITY_TIMEOUT ({VISIBILITY_TIMEOUT:g}) must exceed MAX_TIMEOUT_SECONDS "
        f"({MAX_TIMEOUT_SECONDS:g}): a running task would be delivered twice"
    )

# Don't let a lost broker hang a web request forever (the app answers 503 instead).
BROKER_TRANSPORT_OPTIONS = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
if BROKER_URL.startswith(("redis://", "rediss://")):
    # Workers look for such expired messages every 5 s (kombu's default scans about every 100 s:
    # every 10th sweep of 10 s), so redelivery comes at most ~5 s after the visibility timeout.
    BROKER_TRANSPORT_OPTIONS.update(
        visibility_timeout=VISIBILITY_TIMEOUT,
        unacked_restore_interval=5,
        unacked_restore_throttle=1,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=25,
    )


# --- Memory containment and the fault-mode budget -------------------------------------------------
def _env(name, default):
    """The variable's value, or the default when it is unset or empty (compose passes empty ones)."""
    return os.environ.get(name) or default


def memory_budget_mb():
    """Memory this worker may count on: its cgroup's limit (a container's memory limit) if set, else
    a quarter of the host's RAM (the broker, Redis, Prometheus and other workers need the rest)."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            return int(limit) // (1024 * 1024)
    except (OSError, ValueError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024) // 4


def default_max_memory_per_child_mb():
    """256 MiB per pool process, less where half the budget cannot hold that many processes."""
    return max(64, min(256, memory_budget_mb() // 2 // max(1, WORKER_CONCURRENCY)))


# A pool process whose resident memory (peak RSS, checked after each task) is above this is replaced
# by a fresh one once its task has finished: Celery's worker_max_memory_per_child (in KiB there).
# Default: 256 MiB (3 workers x 2 processes stay under ~2 GB even with every process at the limit),
# less on a small machine or in a container with a small memory limit. 0 turns the limit off.
WORKER_MAX_MEMORY_PER_CHILD_MB = _number("WORKER_MAX_MEMORY_PER_CHILD_MB", default_max_memory_per_child_mb())
# Replace a pool process after this many tasks (Celery's worker_max_tasks_per_child). 0 = never: the
# memory limit above is what contains a leak, and routine replacements would only blur the
# replacement metric that shows it.
WORKER_MAX_TASKS_PER_CHILD = _number("WORKER_MAX_TASKS_PER_CHILD", 0)
# Total memory one pool process keeps for memory_mb tasks. A task that would go over it keeps only
# what is left: RSS of a pool process stays below its baseline + this, even with the limit above off.
WORKER_MAX_RETAINED_MB = _number("WORKER_MAX_RETAINED_MB", WORKER_MAX_MEMORY_PER_CHILD_MB or 256)

# Requests whose total work is out of proportion are refused (422) before anything is enqueued.
# count x timeout: pool-process seconds one request may ask for (1 h; the guide's burst is 200 s).
MAX_TASK_SECONDS_PER_REQUEST = _number("MAX_TASK_SECONDS_PER_REQUEST", 3600, float)
# count x memory_mb: memory one request may ask the workers to keep.
MAX_MEMORY_MB_PER_REQUEST = _number("MAX_MEMORY_MB_PER_REQUEST", 512)

# Fault injection (fail_rate, memory_mb): on in the dev profile, off with PROFILE=production unless
# FAULT_INJECTION=on says otherwise. Off, the app refuses those fields with 422.
PROFILE = _env("PROFILE", "dev")
FAULT_INJECTION = _env("FAULT_INJECTION", "off" if PROFILE == "production" else "on").strip().lower() in (
    "1",
    "on",
    "true",
    "yes",
)

# --- Task latency by stage (worker/latency.py) ------------------------------------------------------
# Histogram bucket bounds in seconds, 5 ms to 1 h, for queue wait, prefetch wait and runtime. Anything
# that plots or alerts on these histograms can import this list instead of repeating it.
DEFAULT_TASK_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
_SWITCH = {"1": True, "on": True, "true": True, "yes": True, "0": False, "off": False, "false": False, "no": False}


def task_latency_buckets():
    """TASK_LATENCY_BUCKETS ("0.005,0.01,..."; empty: the default) as a tuple of increasing positive
    seconds. ValueError with a one-line message naming the variable and its value otherwise.

    Read when a worker starts (worker/latency.py), not at import: a bad value stops the worker with
    that line, and leaves every other process importing these settings alone."""
    text = _env("TASK_LATENCY_BUCKETS", "")
    if not text.strip():
        return DEFAULT_TASK_LATENCY_BUCKETS
    where = f"TASK_LATENCY_BUCKETS={text!r}"
    bounds = []
    for part in text.split(","):
        try:
            bound = float(part)
        except ValueError:
            raise ValueError(
                f"{where}: {part.strip()!r} is not a number of seconds "
                "(expected increasing numbers separated by commas, e.g. 0.005,0.01,0.025)"
            ) from None
        if not 0 < bound < float("inf"):
            raise ValueError(
                f"{where}: {part.strip()!r} must be a positive, finite number of seconds (+Inf is always added)"
            )
        if bounds and bound <= bounds[-1]:
            raise ValueError(f"{where}: the bounds must increase ({bounds[-1]:g} then {bound:g})")
        bounds.append(bound)
    return tuple(bounds)


LATENCY_PER_QUEUE = "per_queue"


def _worker_latency_mode():
    """WORKER_LATENCY_METRICS as one of on, per_queue, off."""
    text = _env("WORKER_LATENCY_METRICS", "1")
    if text.strip().lower() == LATENCY_PER_QUEUE:
        return LATENCY_PER_QUEUE
    try:
        return "on" if _SWITCH[text.strip().lower()] else "off"
    except KeyError:
        raise ValueError(
            f"WORKER_LATENCY_METRICS={text!r}: use 1 (on, the default), {LATENCY_PER_QUEUE} (on, without the "
            "task label) or 0 (off)"
        ) from None


def worker_latency_metrics():
    """WORKER_LATENCY_METRICS: whether workers measure task latency by stage (default on; per_queue
    is on too). ValueError with a one-line message naming the variable and its value for anything but
    1/0, on/off, true/false, yes/no, per_queue."""
    return _worker_latency_mode() != "off"


def worker_latency_by_task():
    """Whether the latency histograms carry the task name (WORKER_LATENCY_METRICS=per_queue: no, one
    series set per queue only: see docs/cardinality.md)."""
    return _worker_latency_mode() != LATENCY_PER_QUEUE
