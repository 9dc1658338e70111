"""The port of every service of the stack, written once: native mode listens on these on 127.0.0.1,
compose publishes them (its files use the same numbers; a test checks), and the configs, tests and
docs take them from here."""

PORTS = {
    "app": 8080,
    "flower": 5555,
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
    "celery_exporter": 9808,
    "rabbitmq": 5672,
    "rabbitmq_management": 15672,
    "rabbitmq_prometheus": 15692,
    "redis": 6379,
    # The Redis broker of BROKER=redis natively (compose: the redis_broker service on 6379).
    "redis_broker": 6380,
    "redis_exporter": 9121,
    # Worker i (1-based) serves its /metrics on worker_metrics + i - 1.
    "worker_metrics": 9191,
}
