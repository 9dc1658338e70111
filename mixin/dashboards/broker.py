"""RabbitMQ / Broker: the broker behind Celery, from the rabbitmq_prometheus plugin.

Per-queue series come from /metrics/detailed (job rabbitmq_queues: rabbitmq_detailed_queue_*
{vhost,queue}); node-wide series from the aggregated /metrics (job rabbitmq).
"""

from mixin.dashboards.builder import RATE, Board, gauge, link, query_variable, stat, target, thresholds, timeseries
from mixin.queries import RabbitMQ, Redis

QUEUE = 'queue=~"$queue"'


def queue_metric(b, metric):
    return b.q.rabbitmq_queue(metric, QUEUE)


def per_queue(b, metric):
    return f"sum by (queue) ({queue_metric(b, metric)})"


def rabbitmq_stats(b):
    """Queues, consumers, connections, memory and alarms now."""
    node = b.q.rabbitmq_node
    backlog = b.t.queue_backlog_max
    memory_used = f"sum({node(RabbitMQ.RESIDENT_MEMORY)}) / sum({node(RabbitMQ.MEMORY_LIMIT)})"
    alarms = b.selector("rabbitmq", RabbitMQ.ALARMS)
    return [
        stat(
            "Ready",
            [target(f"sum({queue_metric(b, RabbitMQ.QUEUE_READY)})")],
            description=f"Messages ready for delivery in the selected queues. Target 0; the "
            f"backlog alert is at {backlog}.",
            steps=thresholds("green", (1, "yellow"), (backlog, "red")),
        ),
        stat(
            "Unacked",
            [target(f"sum({queue_metric(b, RabbitMQ.QUEUE_UNACKED)})")],
            description="Messages delivered to consumers and not yet acknowledged "
            "(prefetched or running, with late acknowledgement).",
        ),
        stat(
            "Consumers",
            [target(f"sum({queue_metric(b, RabbitMQ.QUEUE_CONSUMERS)})")],
            description="Consumers on the selected queues.",
            steps=thresholds("red", (1, "green")),
        ),
        stat("Connections", [target(f"sum({node(RabbitMQ.CONNECTIONS)})")], description="Open client connections."),
        gauge(
            "Memory used",
            [target(memory_used)],
            description="Broker resident memory against its high watermark; at 100% RabbitMQ blocks publishers.",
            unit="percentunit",
            steps=thresholds("green", (1, "red")),
            minimum=0,
            maximum=1,
        ),
        stat(
            "Alarms",
            [target(f"sum({alarms})")],
            description="Resource alarms in effect (memory, disk, file descriptors); while one "
            "is on, publishers are blocked.",
            steps=thresholds("green", (1, "red")),
            graph=False,
        ),
    ]


def rabbitmq_trends(b):
    """The same over time, per queue, and the broker's rates."""
    node = b.q.rabbitmq_node
    backlog = b.t.queue_backlog_max
    alarms = b.selector("rabbitmq", RabbitMQ.ALARMS)
    return [
        timeseries(
            "Ready per queue",
            [target(per_queue(b, RabbitMQ.QUEUE_READY), "{{queue}}")],
            description="Messages ready per queue, including Celery's event queues "
            f"(celeryev.*). The dashed line is the backlog threshold "
            f"({backlog}).",
            steps=thresholds("green", (backlog, "red")),
            threshold_line=True,
        ),
        timeseries(
            "Unacked per queue",
            [target(per_queue(b, RabbitMQ.QUEUE_UNACKED), "{{queue}}")],
            description="Messages delivered and not yet acknowledged, per queue.",
        ),
        timeseries(
            "Consumers per queue",
            [target(per_queue(b, RabbitMQ.QUEUE_CONSUMERS), "{{queue}}")],
            description="Consumers per queue; a work queue without consumers never drains.",
        ),
        timeseries(
            "Publish and deliver rates",
            [
                target(f"sum(rate({node(RabbitMQ.PUBLISHED)}[{RATE}]))", "published"),
                target(f"sum(rate({node(RabbitMQ.DELIVERED)}[{RATE}]))", "delivered"),
            ],
            description="Messages per second published to and delivered by the broker (all queues).",
            unit="reqps",
        ),
        timeseries(
            "Connections and channels",
            [
                target(f"sum({node(RabbitMQ.CONNECTIONS)})", "connections"),
                target(f"sum({node(RabbitMQ.CHANNELS)})", "channels"),
            ],
            description="Open connections and channels.",
            w=8,
        ),
        timeseries(
            "Memory",
            [
                target(f"sum({node(RabbitMQ.RESIDENT_MEMORY)})", "resident"),
                target(f"sum({node(RabbitMQ.MEMORY_LIMIT)})", "high watermark"),
            ],
            description="Broker resident memory and the limit at which it blocks publishers.",
            unit="bytes",
            minimum=0,
            w=8,
        ),
        timeseries(
            "Alarms by type",
            [target(f"max by (__name__) ({alarms})", "{{__name__}}")],
            description="1 while an alarm is in effect.",
            steps=thresholds("green", (1, "red")),
            threshold_line=True,
            minimum=0,
            maximum=1,
            w=8,
        ),
    ]


def build(cfg):
    b = Board(cfg)
    panels = rabbitmq_stats(b) + rabbitmq_trends(b)
    queues = b.q.rabbitmq_queue(RabbitMQ.QUEUE_MESSAGES)
    variables = [query_variable("queue", "Queue", f"label_values({queues}, queue)")]
    management = cfg.urls.rabbitmq_management
    links = ([link("RabbitMQ management", management)] if management else []) + b.flower_links(
        ("Flower: broker", "/broker")
    )
    return b.dashboard(
        "broker",
        "RabbitMQ / Broker",
        "RabbitMQ queues, consumers, message rates, connections, memory and alarms.",
        panels,
        variables=variables,
        links=links,
        tags=("rabbitmq",),
    )


# --- Redis as broker (BROKER=redis): the redis_exporter's series (job redis_broker) -------------


def redis_stats(b):
    """Queued and unacknowledged messages, consumers, clients, memory and evictions now."""
    q, redis, backlog = b.q, b.q.redis, b.t.queue_backlog_max
    return [
        stat(
            "Queued",
            [target(f"sum({q.redis_queue_depth(by='job')})")],
            description=f"Messages in Celery's queue lists that no worker took yet. Target 0; the "
            f"backlog alert is at {backlog}.",
            steps=thresholds("green", (1, "yellow"), (backlog, "red")),
        ),
        stat(
            "Unacked",
            [target(q.redis_unacked())],
            description="Messages a worker took and has not acknowledged (the `unacked` hash): "
            "running tasks with late acknowledgement. A dead worker's stay here until "
            "the visibility timeout, then return to the queue.",
        ),
        stat(
            "Consumers",
            [target(f"sum({q.redis_queue_consumers(by='job')})")],
            description="Workers consuming the Celery queues (the celery-exporter asks them).",
            steps=thresholds("red", (1, "green")),
        ),
        stat(
            "Clients",
            [target(f"sum({redis(Redis.CONNECTED_CLIENTS)})")],
            description="Client connections: workers, Flower, the exporter, the app.",
        ),
        stat(
            "Memory",
            [target(f"sum({redis(Redis.MEMORY_USED)})")],
            description="Memory Redis uses (data, buffers).",
            unit="bytes",
        ),
        stat(
            "Evicted keys",
            [target(f"sum({redis(Redis.EVICTED_KEYS)})")],
            description="Keys evicted for memory since start. The broker runs with noeviction: "
            "anything but 0 means queued tasks were dropped.",
            steps=thresholds("green", (1, "red")),
            graph=False,
        ),
    ]


def redis_trends(b):
    """The same over time, and commands, clients and keys."""
    q, redis, backlog = b.q, b.q.redis, b.t.queue_backlog_max
    return [
        timeseries(
            "Queue and unacked",
            [
                target(q.redis_queue_depth(by="queue"), "{{queue}}"),
                target(q.redis_unacked(), "unacked"),
            ],
            description=f"Queued per queue list and unacknowledged messages. The dashed line is the "
            f"backlog threshold ({backlog}).",
            steps=thresholds("green", (backlog, "red")),
            threshold_line=True,
        ),
        timeseries(
            "Commands per second",
            [
                target(f"sum(rate({redis(Redis.COMMANDS)}[{RATE}]))", "commands"),
            ],
            description="Commands Redis processes per second (publishes, pops, acks, events).",
            unit="reqps",
        ),
        timeseries(
            "Clients over time",
            [
                target(f"sum({redis(Redis.CONNECTED_CLIENTS)})", "connected"),
                target(f"sum({redis(Redis.BLOCKED_CLIENTS)})", "blocked (waiting on a queue)"),
                target(f"sum({redis(Redis.PUBSUB_PATTERNS)})", "pub/sub patterns (event monitors)"),
            ],
            description="Connected clients, those blocked in BRPOP on a queue, and pub/sub pattern "
            "subscriptions (one per event monitor: Flower, the exporter).",
            w=8,
        ),
        timeseries(
            "Memory over time",
            [
                target(f"sum({redis(Redis.MEMORY_USED)})", "used"),
                target(f"sum({redis(Redis.MEMORY_MAX)})", "maxmemory (0: none)"),
            ],
            description="Memory used, and the maxmemory limit when one is set.",
            unit="bytes",
            minimum=0,
            w=8,
        ),
        timeseries(
            "Keys and evictions",
            [
                target(f"sum({redis(Redis.KEYS)})", "keys"),
                target(f"sum(rate({redis(Redis.EVICTED_KEYS)}[{RATE}]))", "evicted/s"),
                target(f"sum(rate({redis(Redis.EXPIRED_KEYS)}[{RATE}]))", "expired/s"),
            ],
            description="Keys in all databases, and keys evicted or expired per second.",
            w=8,
        ),
    ]


def build_redis(cfg):
    b = Board(cfg)
    panels = redis_stats(b) + redis_trends(b)
    links = b.flower_links(("Flower: broker", "/broker"))
    return b.dashboard(
        "redis_broker",
        "Redis / Broker",
        "Redis as Celery's broker: queue lists, unacknowledged messages, consumers, "
        "clients, memory, keys, evictions and commands per second.",
        panels,
        links=links,
        tags=("redis",),
    )
