"""The single source of truth for every threshold, selector, job name and dashboard id.

Alert rules (alerts/celery.rules.yml) and dashboards (grafana/provisioning/dashboards/*.json)
are generated from this module (`python -m mixin`), in the style of the celery-mixin's
config.libsonnet. Prometheus job names here must match prometheus/prometheus.yml (a test checks).
"""

# Prometheus job names, as written in prometheus/prometheus.yml.
JOBS = {
    "app": "app",
    "worker": "celery_worker",
    "flower": "flower",
    "exporter": "celery_exporter",
    "rabbitmq": "rabbitmq",
    "rabbitmq_queues": "rabbitmq_queues",
    "alertmanager": "alertmanager",
    "prometheus": "prometheus",
    # Redis as broker (BROKER=redis; prometheus/prometheus.redis.yml): the redis_exporter's job,
    # instead of the two RabbitMQ jobs.
    "redis_broker": "redis_broker",
}

REDIS_BROKER_JOB = JOBS["redis_broker"]
# Brokers the queue alerts understand. One rule file serves both: each broker's expression is
# joined with `or`, and only the broker in use has series (rabbitmq_* or the redis_exporter's).
BROKERS = ("rabbitmq", "redis")

# Selectors every query uses, so that renaming a job is a one-line change here.
SELECTORS = {
    "exporter": f'job="{JOBS["exporter"]}"',
    "flower": f'job="{JOBS["flower"]}"',
    "worker": f'job="{JOBS["worker"]}"',
    "rabbitmq": f'job="{JOBS["rabbitmq"]}"',
    "rabbitmq_queues": f'job="{JOBS["rabbitmq_queues"]}"',
    "app": f'job="{JOBS["app"]}"',
    "redis_broker": f'job="{REDIS_BROKER_JOB}"',
    # Celery's task queues on the broker, without the per-worker pidbox and event (celeryev.*) queues.
    "task_queues": f'job="{JOBS["rabbitmq_queues"]}", queue!~"celeryev.*|.*pidbox"',
    # The event queues of the monitors (Flower, the exporter): celeryev.<uuid>.
    "event_queues": f'job="{JOBS["rabbitmq_queues"]}", queue=~"celeryev.*"',
}

# The guide's production thresholds ("Полезные Метрики").
THRESHOLDS = {
    # Task success rate must stay above 95 %.
    "success_ratio_min": 0.95,
    # Do not judge a success rate on fewer finished tasks than this in the window.
    "success_min_tasks": 20,
    "success_window": "5m",
    "success_for": "2m",
    # Queue length near 0: more than this many ready messages, sustained, is a backlog.
    "queue_backlog_max": 10,
    "queue_backlog_for": "5m",
    # Worker CPU must stay below 80 % of the cores the worker may use.
    "worker_cpu_ratio_max": 0.80,
    "worker_cpu_for": "5m",
    # Memory must be stable: RSS growth faster than this (bytes per second), sustained, alerts.
    "worker_memory_growth_bytes_per_s": 1024 * 1024 / 60,  # 1 MiB per minute
    "worker_memory_for": "10m",
    # Runtime must not rise: p95 above this multiple of its own baseline alerts.
    "runtime_p95_ratio_max": 2.0,
    # Throughput against a baseline: below this fraction of the same window a day earlier.
    "throughput_ratio_min": 0.5,
    "throughput_baseline_offset": "1d",
    # Queue growing steadily: depth above queue_backlog_max and rising this fast over the window.
    "queue_growth_window": "10m",
    "queue_growth_min_per_minute": 3,
    "queue_growth_for": "5m",
    # Messages ready but no consumer on the queue.
    "queue_no_consumer_for": "1m",
    # Rate window of worker CPU utilisation.
    "worker_cpu_window": "2m",
    # Window of the memory trend (deriv). Shorter than worker_memory_for on purpose: a one-off step
    # (a cache filling once) leaves the window before the alert can fire; only steady growth stays.
    "worker_memory_window": "5m",
    # Runtime baseline: average p95 over this window, ending this long ago (so a rise does not
    # dilute its own baseline). Rises of p95 below runtime_p95_min_seconds are noise, not alerts.
    "runtime_baseline_window": "1h",
    "runtime_baseline_offset": "15m",
    "runtime_p95_min_seconds": 0.25,
    "runtime_for": "5m",
    "throughput_for": "15m",
    # Workers: offline per Flower (full names), none online at all, no worker alive on a host.
    "worker_down_for": "1m",
    # A worker whose Flower series vanished (purged after it died) alerts for this long at most.
    "worker_vanished_window": "15m",
    # A scrape target down. Shorter than worker_down_for so that its inhibitions arrive first.
    "target_down_for": "30s",
    # The monitoring pipeline lags: a monitor's event queue holds more than this many events and
    # keeps growing. Events wait at most EVENT_QUEUE_TTL (60 s) before RabbitMQ drops them.
    "events_backlog_max": 1000,
    "events_window": "5m",
    "events_for": "2m",
    # Events lost on the way to a monitor (a lagging consumer's events expired on RabbitMQ, or a
    # pub/sub client disconnected by Redis): Flower or the exporter counted fewer task-started events
    # than the workers say they started, by more than this share of them. The window is long so that
    # a monitor merely lagging (ratio x window = 36 s behind) does not look like a loss; a count
    # below events_lost_min_tasks in the window is not judged.
    "events_lost_ratio_max": 0.02,
    "events_lost_min_tasks": 100,
    "events_lost_window": "30m",
    "events_lost_for": "5m",
    # Tasks wait at a worker between being received (prefetched) and started (Flower's prefetch
    # time): the average over the window above this many seconds, sustained, alerts (as Flower's
    # example alert TaskPrefetchTimeTooHigh: 1 s over 15m, for 5m).
    "prefetch_wait_max_seconds": 1,
    "prefetch_wait_window": "15m",
    "prefetch_wait_for": "5m",
    # Pool processes recycled at worker_max_memory_per_child (or _tasks_per_child): each process of a
    # worker replaced more than this many times within the window, sustained, is a fast leak that
    # the containment hides from CeleryWorkerMemoryGrowing (every replacement resets the trend).
    "pool_recycling_per_process_max": 1,
    "pool_recycling_window": "30m",
    "pool_recycling_for": "5m",
}

# How often Prometheus evaluates the rule groups (a demo value; the scrape interval is 5s).
EVALUATION_INTERVAL = "5s"

# Grafana: provisioned datasource uid and dashboard uids (stable, linked from alerts).
GRAFANA_URL = "http://localhost:3000"
DATASOURCE_UID = "prometheus"
DASHBOARD_UIDS = {
    "overview": "celery-overview",
    "tasks": "celery-tasks",
    "workers": "celery-workers",
    "broker": "rabbitmq-broker",
    "redis_broker": "redis-broker",
}

# Where runbooks live, for runbook_url annotations.
RUNBOOK_BASE_URL = "http://localhost:8080/runbooks"
FLOWER_URL = "http://localhost:5555"
# RabbitMQ management UI, linked from the broker dashboard.
RABBITMQ_MANAGEMENT_URL = "http://localhost:15672"
