"""The port of every service of the stack, written once: native mode listens on these on 127.0.0.1,
and native/, the mixin, the bench, the load test, the tools and the tests take them from here.
Config files (compose, Prometheus, Alertmanager, Grafana, the Helm chart) and the app's and the
workers' own defaults (the image ships app/ and worker/ without native/) write the numbers
themselves; tests/config/test_ports.py checks that they agree (with BASE_PORTS).

A second native stack on the same machine (NATIVE_INSTANCE: the Redis-broker tests beside the
RabbitMQ ones, a second cluster) moves every port of its own by NATIVE_PORT_OFFSET; the servers it
shares with the first (RabbitMQ, the system Redis) keep theirs."""

import os

BASE_PORTS = {
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
# Servers every native stack on this machine shares.
SHARED = ("rabbitmq", "rabbitmq_management", "rabbitmq_prometheus", "redis")


def port_offset(environ=os.environ):
    """NATIVE_PORT_OFFSET: a whole number from 0 to 20000 (0 when unset)."""
    text = environ.get("NATIVE_PORT_OFFSET", "").strip() or "0"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 20000:
        raise ValueError(f"NATIVE_PORT_OFFSET must be a whole number from 0 to 20000, got {text!r}")
    return value


OFFSET = port_offset()
PORTS = {name: port + (0 if name in SHARED else OFFSET) for name, port in BASE_PORTS.items()}
