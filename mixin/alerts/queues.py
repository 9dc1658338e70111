"""Queue alerts: the guide's "queue length near 0" (backlog, growth) and a queue nobody consumes.

They read celery:queue_messages_ready:sum and celery:queue_consumers:sum (mixin/rules.py), which
come from the broker's own metrics or, without a broker exporter, the celery-exporter's.

With workers autoscaled by KEDA (cfg.autoscaling.keda) a backlog is how more workers get started:
the backlog alerts stay silent while the deployment's HorizontalPodAutoscaler is below its maximum
replicas, and fire once the workers are at their maximum (their `for` counts from then).
"""

from mixin.alerts.alert import Alert
from mixin.queries import num

# RabbitMQ's queues live in a vhost; Redis and the exporter's queue series have none.
VHOST = "{{ with $labels.vhost }} (vhost {{ . }}){{ end }}"
HPA_CURRENT = "kube_horizontalpodautoscaler_status_current_replicas"
HPA_MAX = "kube_horizontalpodautoscaler_spec_max_replicas"


def has_queues(cfg):
    return bool(cfg.sources.brokers) or cfg.sources.exporter


def dashboard(cfg):
    """The broker's own dashboard when the Config scrapes one broker; else the Overview's queue panels."""
    brokers = cfg.sources.brokers
    return {("rabbitmq",): "broker", ("redis",): "redis_broker"}.get(tuple(brokers), "overview")


def scaling_up(cfg):
    """The deployments whose workers' HPA runs below its maximum, labelled by the join labels."""
    labels = cfg.labels
    match = f'horizontalpodautoscaler=~"{cfg.autoscaling.hpa}"'
    keys = ", ".join([labels.cluster, labels.namespace, *labels.extra, "horizontalpodautoscaler"])
    # A one-to-one comparison `on (...)` keeps only those labels: the deployment label comes after it.
    below_max = f"{HPA_CURRENT}{{{match}}} < on ({keys}) {HPA_MAX}{{{match}}}"
    if not labels.deployment:
        return below_max
    # KEDA names the HPA after the ScaledObject, in its namespace: the deployment label's value is
    # `<namespace>/<first group of the HPA's name>`, so same-named releases in two namespaces differ.
    dep = labels.deployment
    joined = f'label_join({below_max}, "{dep}", "/", "{labels.namespace}", "horizontalpodautoscaler")'
    return f'label_replace({joined}, "{dep}", "$1/$2", "{dep}", "(.*)/{cfg.autoscaling.hpa}")'


def unless_scaling(cfg, q, expr, when):
    if not cfg.autoscaling.keda:
        return expr, when
    return (
        f"({expr})\nunless on ({q.join})\n({scaling_up(cfg)})",
        f"{when}, and the autoscaled workers are at their maximum replicas",
    )


def backlog(cfg, q):
    if not has_queues(cfg):
        return None
    t = cfg.thresholds
    limit = num(t.queue_backlog_max)
    expr, when = unless_scaling(
        cfg,
        q,
        f"celery:queue_messages_ready:sum > {limit}",
        f"more than {limit} messages are ready in a task queue for {t.queue_backlog_for}",
    )
    return Alert(
        name="CeleryQueueBacklog",
        expr=expr,
        when=when,
        for_=t.queue_backlog_for,
        severity="warning",
        dashboard=dashboard(cfg),
        summary="Queue {{ $labels.queue }} has a backlog",
        description=(
            f"{{{{ $value | humanize }}}} messages are waiting in queue {{{{ $labels.queue }}}}{VHOST}, "
            f"more than {limit} for {t.queue_backlog_for}: the workers do not keep up."
        ),
    )


def growing(cfg, q):
    if not has_queues(cfg):
        return None
    t = cfg.thresholds
    limit, rate = num(t.queue_backlog_max), num(t.queue_growth_min_per_minute)
    expr, when = unless_scaling(
        cfg,
        q,
        f"deriv(celery:queue_messages_ready:sum[{t.queue_growth_window}]) * 60 > {rate}\nand\n"
        f"celery:queue_messages_ready:sum > {limit}",
        f"a task queue holds more than {limit} ready messages and grows by more than {rate} per minute "
        f"(trend over {t.queue_growth_window}), for {t.queue_growth_for}",
    )
    return Alert(
        name="CeleryQueueGrowing",
        expr=expr,
        when=when,
        for_=t.queue_growth_for,
        severity="warning",
        dashboard=dashboard(cfg),
        summary="Queue {{ $labels.queue }} keeps growing",
        description=(
            f"Queue {{{{ $labels.queue }}}}{VHOST} grows by {{{{ $value | humanize }}}} messages per "
            f"minute (trend over {t.queue_growth_window}, threshold {rate}/min)."
        ),
    )


def no_consumer(cfg, q):
    if not has_queues(cfg):
        return None
    t = cfg.thresholds
    return Alert(
        name="CeleryQueueNoConsumer",
        expr="celery:queue_messages_ready:sum > 0\nand\ncelery:queue_consumers:sum == 0",
        for_=t.queue_no_consumer_for,
        severity="critical",
        dashboard=dashboard(cfg),
        summary="Queue {{ $labels.queue }} has messages but no consumer",
        description=(
            f"{{{{ $value | humanize }}}} messages wait in queue {{{{ $labels.queue }}}}{VHOST} and no "
            f"worker consumes it: nothing will process them."
        ),
        when=f"a task queue has ready messages and no consumer for {t.queue_no_consumer_for}",
    )


ALERTS = (backlog, growing, no_consumer)
