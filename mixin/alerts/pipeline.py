"""Alerts on the monitoring itself: targets Prometheus cannot scrape, monitors that lag behind or
lose task events, and the always-firing heartbeat of the alerting path."""

from mixin.alerts.alert import Alert, pct
from mixin.queries import num


def scraped_jobs(cfg):
    """The jobs of the sources the Config has, whose targets being down blinds an alert."""
    jobs = cfg.jobs
    present = [
        (cfg.sources.exporter, jobs.exporter),
        (cfg.sources.flower, jobs.flower),
        ("rabbitmq" in cfg.sources.brokers, jobs.rabbitmq),
        ("rabbitmq" in cfg.sources.brokers, jobs.rabbitmq_queues),
        (cfg.sources.app, jobs.app),
        (cfg.sources.worker_metrics, jobs.worker),
    ]
    return [job for has, job in present if has]


def target_down(cfg, q):
    jobs = scraped_jobs(cfg)
    if not jobs:
        return None
    t = cfg.thresholds
    return Alert(
        name="CeleryTargetDown",
        expr=f'up{{job=~"{"|".join(jobs)}"}} == 0',
        for_=t.target_down_for,
        severity="warning",
        dashboard="overview",
        summary="Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}",
        description=(
            f"Target {{{{ $labels.instance }}}} of job {{{{ $labels.job }}}} is down (up = {{{{ $value }}}}) "
            f"for {t.target_down_for}: alerts fed by it are blind."
        ),
        when=f"Prometheus cannot scrape one of the bundle's targets for {t.target_down_for}",
    )


def events_lagging(cfg, q):
    """Only RabbitMQ keeps the monitors' events in queues (celeryev.*) whose depth can be read."""
    if "rabbitmq" not in cfg.sources.brokers or not q.monitors():
        return None
    t = cfg.thresholds
    events, limit = q.event_queue_depth(), num(t.events_backlog_max)
    return Alert(
        name="CeleryEventsLagging",
        expr=f"{events} > {limit}\nand\nderiv({events}[{t.events_window}]) > 0",
        for_=t.events_for,
        severity="warning",
        dashboard="overview",
        summary="A monitor does not keep up with the task events",
        description=(
            f"Event queue {{{{ $labels.queue }}}} holds {{{{ $value | humanize }}}} events and keeps "
            f"growing (threshold {limit}): Flower or the exporter lags, and events older than the "
            f"queue's TTL are dropped, so success rates and throughput will be wrong."
        ),
        when=(
            f"a monitor's event queue holds more than {limit} events and grows (trend over "
            f"{t.events_window}) for {t.events_for}"
        ),
    )


def events_lost(cfg, q):
    """Each worker counts the tasks it started; a monitor that counted fewer lost their events."""
    if not cfg.sources.worker_metrics or not q.monitors():
        return None
    t = cfg.thresholds
    share, window, min_tasks = pct(t.events_lost_ratio_max), t.events_lost_window, num(t.events_lost_min_tasks)
    return Alert(
        name="CeleryEventsLost",
        expr=(
            f"celery:monitor_events_lost:ratio > {num(t.events_lost_ratio_max)}\nand on ({q.join})\n"
            f"celery:worker_tasks_started:increase >= {min_tasks}"
        ),
        for_=t.events_lost_for,
        severity="warning",
        dashboard="overview",
        summary="{{ $labels.job }} misses task events",
        description=(
            f"{{{{ $labels.job }}}} did not count {{{{ $value | humanizePercentage }}}} of the tasks the "
            f"workers started in the last {window} (threshold {share}): its events were lost on the way "
            f"(on Redis, a pub/sub client that fell behind is disconnected; on RabbitMQ, events wait at "
            f"most the event queue TTL), so its counts, rates and task lists are short."
        ),
        when=(
            f"Flower or the exporter counted more than {share} fewer task-started events than the workers "
            f"started in {window} (at least {min_tasks} started), for {t.events_lost_for}"
        ),
    )


def watchdog(cfg, q):
    return Alert(
        name="Watchdog",
        expr="vector(1)",
        for_=None,
        severity="none",
        dashboard="overview",
        summary="Alerting pipeline heartbeat (always firing)",
        description="Always firing. If it stops arriving, the Prometheus -> Alertmanager -> receiver path is broken.",
        when="always (a heartbeat of the alerting pipeline)",
    )


ALERTS = (target_down, events_lagging, events_lost, watchdog)
