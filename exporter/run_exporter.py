"""Launch the danihodovic celery-exporter with the bundle's changes, without forking its code.

The exporter (PyPI prometheus-exporter-celery, top-level package `src`) is used as installed; this
launcher changes four things at import time, by subclassing and by replacing two names its modules
look up when they run:

1. A longer event queue TTL. The exporter has no option for Celery's event_queue_ttl, and with the
   default 5 s RabbitMQ drops events that a lagging exporter has not consumed yet (the reliability
   tests measure it). It builds its Celery app from `src.exporter.Celery`: TunedCelery sets the
   TTL from EVENT_QUEUE_TTL and EVENT_QUEUE_EXPIRES (the bundle's values are in worker/settings.py).

2. Queue and worker-count metrics refreshed in the background. The exporter computes
   celery_queue_length, celery_active_consumer_count, celery_active_worker_count and
   celery_active_process_count inside every /metrics request: it broadcasts inspect().stats() and
   inspect().active_queues() to every worker and waits out each 1 s reply timeout, so a scrape takes
   2 s and longer with a large fleet, and every Prometheus replica's scrape makes every worker answer
   twice. Here one thread refreshes them (and times out / purges silent workers, which the exporter
   also did per scrape) right at start and then every --queue-metrics-interval seconds; /metrics
   only serves the registry. A refresh that fails (broker down) keeps the last values and is logged;
   celery_exporter_queue_metrics_refresh_{timestamp_seconds,duration_seconds,failures_total} tell
   how fresh the values are.

3. Task metrics without the worker's hostname (--no-per-worker-task-metrics, the default). The
   task counters and the runtime histogram carry `hostname`, so their series multiply by the number
   of workers and every restarted pod with a new name starts new ones. The bundle's rules and
   dashboards sum them by task name and queue, so by default the label is dropped from these
   metrics (the series are the same as with a constant empty value: PromQL treats an empty label as
   absent). celery_worker_up and celery_worker_tasks_active stay per worker (one series each).

4. No `*_created` series. prometheus_client adds a gauge `<name>_created` (the Unix time the series
   began) to every counter and histogram label set, which Prometheus 2.x stores as one more series
   each: about a fifth of the exporter's series, read by nothing (rate() and increase() handle resets
   without them). prometheus_client.disable_created_metrics() turns them off for the process.

Options added to the exporter's own (which all still work, also as CE_<OPTION> environment variables):
  --queue-metrics-interval SECONDS                          CE_QUEUE_METRICS_INTERVAL (default 10)
  --per-worker-task-metrics / --no-per-worker-task-metrics  CE_PER_WORKER_TASK_METRICS (default off)
Bad values end the launcher with a one-line message and exit code 2.

Usage: EVENT_QUEUE_TTL=60 EVENT_QUEUE_EXPIRES=120 python run_exporter.py --broker-url=... [options]
(native mode and compose pass both variables in the environment). This file is all there is of the
launcher: compose mounts it alone and the Helm chart embeds a copy, so it imports nothing else of the
bundle.
"""

import functools
import inspect
import math
import os
import sys
import threading
import time

import click
from celery import Celery
from click.core import ParameterSource
import prometheus_client
from loguru import logger
from prometheus_client import Counter, Gauge, Histogram

import src.cli
import src.exporter
from src.cli import cli
from src.exporter import Exporter

PROG = "run_exporter.py"
DEFAULT_QUEUE_METRICS_INTERVAL = 10.0
EVENT_QUEUE_VARIABLES = ("EVENT_QUEUE_TTL", "EVENT_QUEUE_EXPIRES")


class TunedCelery(Celery):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conf.event_queue_ttl = float(os.environ["EVENT_QUEUE_TTL"])
        self.conf.event_queue_expires = float(os.environ["EVENT_QUEUE_EXPIRES"])
        # Its event receiver accepts this serializer and json (worker/settings.py EVENT_SERIALIZER).
        self.conf.event_serializer = os.environ.get("EVENT_SERIALIZER", "json")


class _IgnoresHostname:
    """labels() without the `hostname` the exporter's task event handler passes for every event.

    The handler asks for the labels of every task counter on every event (it increments the others
    by 0), so the children are kept by their label values: a dict lookup instead of
    prometheus_client's checks and lock, about a third of the exporter's CPU per event.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._children = {}

    def labels(self, *labelvalues, **labelkwargs):
        labelkwargs.pop("hostname", None)
        key = (labelvalues, tuple(labelkwargs.items()))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = super().labels(*labelvalues, **labelkwargs)
        return child

    def remove(self, *labelvalues):
        self._children.clear()
        super().remove(*labelvalues)

    def clear(self):
        self._children.clear()
        super().clear()


class _TaskCounter(_IgnoresHostname, Counter):
    pass


class _TaskHistogram(_IgnoresHostname, Histogram):
    pass


class BundleExporter(Exporter):
    """The exporter with its queue metrics refreshed by a thread, and optionally hostname-less task metrics."""

    def __init__(
        self, *args, queue_metrics_interval=DEFAULT_QUEUE_METRICS_INTERVAL, per_worker_task_metrics=False, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.queue_metrics_interval = queue_metrics_interval
        self.per_worker_task_metrics = per_worker_task_metrics
        if not per_worker_task_metrics:
            self.state_counters = {
                event: self._without_hostname(counter, _TaskCounter) for event, counter in self.state_counters.items()
            }
            self.celery_task_runtime = self._without_hostname(
                self.celery_task_runtime, _TaskHistogram, buckets=self.celery_task_runtime._upper_bounds
            )
        # The exporter's own arguments by name (the CLI passes them by position).
        arguments = inspect.signature(Exporter).bind(*args, **kwargs)
        arguments.apply_defaults()
        prefix = arguments.arguments["metric_prefix"]
        labels = list(self.static_label_keys)
        self.refresh_timestamp = Gauge(
            f"{prefix}exporter_queue_metrics_refresh_timestamp_seconds",
            "Unix time of the last successful refresh of the queue and worker-count metrics.",
            labels,
            registry=self.registry,
        )
        self.refresh_duration = Gauge(
            f"{prefix}exporter_queue_metrics_refresh_duration_seconds",
            "How long the last refresh of the queue and worker-count metrics took.",
            labels,
            registry=self.registry,
        )
        self.refresh_failures = Counter(
            f"{prefix}exporter_queue_metrics_refresh_failures",
            "Refreshes of the queue and worker-count metrics that failed (their last values stay).",
            labels,
            registry=self.registry,
        )
        self._own(self.refresh_failures)  # 0 from the start, also with --static-label
        self._slow_refresh_reported = False

    def _without_hostname(self, metric, cls, **kwargs):
        self.registry.unregister(metric)
        return cls(
            metric._name,
            metric._documentation,
            [name for name in metric._labelnames if name != "hostname"],
            registry=self.registry,
            **kwargs,
        )

    def scrape(self):
        """What the exporter calls on every /metrics request: nothing; the refresher keeps the values."""

    def refresh(self):
        """One refresh: the exporter's own per-scrape work (silent workers, then queues and workers)."""
        super().scrape()

    def start_refresher(self):
        threading.Thread(target=self._refresh_forever, name="queue-metrics-refresher", daemon=True).start()

    def _own(self, metric):
        return metric.labels(**self.static_label) if self.static_label else metric

    def _refresh_forever(self):
        failing = False
        while True:
            started = time.monotonic()
            try:
                self.refresh()
            except Exception as e:  # pylint: disable=broad-except
                # Broker down or unreachable: keep serving the last values, try again next interval.
                self._own(self.refresh_failures).inc()
                if failing:
                    logger.warning("Queue metrics refresh failed again: {}: {}", type(e).__name__, e)
                else:
                    logger.opt(exception=e).error("Queue metrics refresh failed, serving the last values: {}", e)
                failing = True
            else:
                self._own(self.refresh_timestamp).set(time.time())
                if failing:
                    logger.info("Queue metrics refresh works again")
                failing = False
            took = time.monotonic() - started
            self._own(self.refresh_duration).set(took)
            if took > self.queue_metrics_interval and not self._slow_refresh_reported:
                self._slow_refresh_reported = True
                logger.warning(
                    "A queue metrics refresh took {:.1f} s, longer than --queue-metrics-interval={:g}: "
                    "refreshes now run back to back",
                    took,
                    self.queue_metrics_interval,
                )
            time.sleep(max(0.0, self.queue_metrics_interval - took))

    def purge_worker_metrics(self, hostname):
        if self.per_worker_task_metrics:
            super().purge_worker_metrics(hostname)
            return
        # The exporter would also remove every task series with a label value equal to the hostname:
        # without hostname those are all workers' counts (and a task or queue may be named like a host).
        for gauge in (self.worker_tasks_active, self.celery_worker_up):
            for labelvalues in list(gauge._metrics):
                if labelvalues[0] == hostname:  # hostname is their first label
                    gauge.remove(*labelvalues)
        del self.worker_last_seen[hostname]


_serve_metrics = src.exporter.start_http_server


def start_http_server(registry, celery_connection, host, port, metrics_puller):
    """Exporter.run calls this once, when its Celery app is configured (broker, transport and SSL
    options) and just before it consumes events: the moment to start the refresher."""
    metrics_puller.__self__.start_refresher()  # metrics_puller is the exporter's bound scrape()
    _serve_metrics(registry, celery_connection, host, port, metrics_puller)


def _positive_seconds(ctx, param, value):
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise click.BadParameter(f"{value!r} is not a positive number of seconds", ctx, param)
    return seconds


def _check_event_queue_variables():
    for name in EVENT_QUEUE_VARIABLES:
        value = os.environ.get(name)
        hint = "(the bundle's values are in worker/settings.py)"
        if not value:
            raise click.UsageError(f"set {name} {hint}")
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            raise click.UsageError(f"{name}={value!r} is not a positive number of seconds {hint}")


def _extend(command):
    command.params.extend(
        [
            click.Option(
                ["--queue-metrics-interval"],
                default=str(int(DEFAULT_QUEUE_METRICS_INTERVAL)),
                envvar="CE_QUEUE_METRICS_INTERVAL",
                show_default=True,
                metavar="SECONDS",
                callback=_positive_seconds,
                help="Refresh the queue and worker-count metrics (celery_queue_length, "
                "celery_active_*) in the background this often; /metrics serves the last values. "
                "A refresh itself takes about 2 s (it waits 1 s for the workers' replies to each "
                "of two broadcasts). Environment: CE_QUEUE_METRICS_INTERVAL.",
            ),
            click.Option(
                ["--per-worker-task-metrics/--no-per-worker-task-metrics"],
                default=False,
                envvar="CE_PER_WORKER_TASK_METRICS",
                show_default=True,
                help="Label the task counters and the runtime histogram with the worker's hostname "
                "(series per task name x worker). Off: one series per task name and queue. "
                "Environment: CE_PER_WORKER_TASK_METRICS (true/false).",
            ),
        ]
    )
    run_exporter = command.callback

    def callback(queue_metrics_interval, per_worker_task_metrics, **options):
        _check_event_queue_variables()
        src.cli.Exporter = functools.partial(
            BundleExporter,
            queue_metrics_interval=queue_metrics_interval,
            per_worker_task_metrics=per_worker_task_metrics,
        )
        return run_exporter(**options)

    command.callback = callback
    return command


def _one_line(error):
    message = error.format_message()
    param, ctx = getattr(error, "param", None), getattr(error, "ctx", None)
    if param is not None and ctx is not None and ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT:
        envvar = param.envvar or f"{ctx.auto_envvar_prefix}_{param.name.upper()}"
        if envvar not in message:  # some click versions name it already
            message += f" (from the environment variable {envvar})"
    return " ".join(message.split())


def main(args=None):
    try:
        return cli.main(args=args, prog_name=PROG, auto_envvar_prefix="CE", standalone_mode=False)
    except click.ClickException as e:
        click.echo(f"{PROG}: error: {_one_line(e)}", err=True)
        return e.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1


prometheus_client.disable_created_metrics()
src.exporter.Celery = TunedCelery
src.exporter.start_http_server = start_http_server
_extend(cli)

if __name__ == "__main__":
    sys.exit(main())
