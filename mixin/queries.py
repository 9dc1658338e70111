"""Every PromQL expression of the bundle, written once.

Alert rules (mixin/rules.py, mixin/alerts/) and dashboard panels (mixin/dashboards/) both build
their queries here, so a panel shows a signal exactly as its alert computes it: the same series,
the same aggregation, the same window. Job names, label names and sources come from the Config.
"""

import re

from mixin.config import Config

WITH_EXCEPTION = 'exception!=""'  # the exporter adds exception="" failure series at zero
RETRIED = 'type="task-retried"'  # Flower's event types
STARTED = 'type="task-started"'
PROCESSED = 'type=~"task-succeeded|task-failed"'

# Metric names that more than one expression reads (an alert and a panel, a panel and a dashboard's
# job variable), each spelled here once.
POOL_PROCESSES = "celery_worker_pool_processes"  # each worker's own /metrics
FLOWER_WORKER_ONLINE = "flower_worker_online"
EXPORTER_WORKER_UP = "celery_worker_up"  # celery-exporter: 1 per host part of a live worker's name
EXPORTER_QUEUE_LENGTH = "celery_queue_length"  # celery-exporter: messages in each queue


class RabbitMQ:
    """The rabbitmq_prometheus plugin's series: per queue from /metrics/detailed (job
    rabbitmq_queues), node-wide from /metrics (job rabbitmq)."""

    QUEUE_MESSAGES = "rabbitmq_detailed_queue_messages"
    QUEUE_READY = "rabbitmq_detailed_queue_messages_ready"
    QUEUE_UNACKED = "rabbitmq_detailed_queue_messages_unacked"
    QUEUE_CONSUMERS = "rabbitmq_detailed_queue_consumers"
    # Publish time (AMQP timestamp property, whole seconds) of the queue's first message; NaN when
    # the queue is empty or that message carries no timestamp (worker/latency.py sets it).
    QUEUE_HEAD_TIMESTAMP = "rabbitmq_detailed_queue_head_message_timestamp"
    IDENTITY = "rabbitmq_identity_info"
    CONNECTIONS = "rabbitmq_connections"
    CHANNELS = "rabbitmq_channels"
    RESIDENT_MEMORY = "rabbitmq_process_resident_memory_bytes"
    MEMORY_LIMIT = "rabbitmq_resident_memory_limit_bytes"  # the high watermark
    PUBLISHED = "rabbitmq_global_messages_received_total"
    DELIVERED = "rabbitmq_global_messages_delivered_total"
    ALARMS = '__name__=~"rabbitmq_alarms_.+"'  # a matcher: every resource alarm's series


class Redis:
    """The redis_exporter's series for a Redis broker (job redis_broker)."""

    UP = "redis_up"
    KEY_SIZE = "redis_key_size"  # --check-single-keys: Celery's queue lists and the `unacked` hash
    CONNECTED_CLIENTS = "redis_connected_clients"
    BLOCKED_CLIENTS = "redis_blocked_clients"
    PUBSUB_PATTERNS = "redis_pubsub_patterns"
    MEMORY_USED = "redis_memory_used_bytes"
    MEMORY_MAX = "redis_memory_max_bytes"
    KEYS = "redis_db_keys"
    EVICTED_KEYS = "redis_evicted_keys_total"
    EXPIRED_KEYS = "redis_expired_keys_total"
    COMMANDS = "redis_commands_processed_total"


def num(x):
    """A number as PromQL text: 20 not 20.0, full precision otherwise."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def selectors(cfg: Config):
    """The matchers of each source, from the configured job names."""
    jobs = cfg.jobs
    return {
        "exporter": f'job="{jobs.exporter}"',
        "flower": f'job="{jobs.flower}"',
        "worker": f'job="{jobs.worker}"',
        "rabbitmq": f'job="{jobs.rabbitmq}"',
        "rabbitmq_queues": f'job="{jobs.rabbitmq_queues}"',
        "app": f'job="{jobs.app}"',
        "redis_broker": f'job="{jobs.redis_broker}"',
        # Celery's task queues on the broker, without the per-worker pidbox and event (celeryev.*) queues.
        "task_queues": f'job="{jobs.rabbitmq_queues}", queue!~"celeryev.*|.*pidbox"',
        # The event queues of the monitors (Flower, the exporter): celeryev.<uuid>.
        "event_queues": f'job="{jobs.rabbitmq_queues}", queue=~"celeryev.*"',
    }


class Queries:
    """Expressions over the Config's selectors (plain job matchers), or over `selectors` given (a
    dashboard passes ones that carry its template variables); the expressions stay the same.

    Every aggregation keeps the deployment labels (cfg.labels.scope: cluster, namespace, ...), so
    one Prometheus can watch several deployments and each alert says which one it is about; joins
    across components match on cfg.labels.join.
    """

    def __init__(self, cfg: Config, selectors_=None):
        self.cfg = cfg
        self.selectors = selectors_ or selectors(cfg)
        scope = cfg.labels.scope
        # One source of one deployment; one task type (hostname is summed away: the exporter
        # collapses all workers of a host into it anyway); one broker queue; one worker.
        self.deployment = ", ".join([*scope, "job"])
        self.task = f"{self.deployment}, name, queue_name"
        self.queue = f"{self.deployment}, vhost, queue"
        self.worker = f"{self.deployment}, instance, worker"
        # One deployment across its components (workers against their monitors).
        self.join = ", ".join(cfg.labels.join)

    def sel(self, source, *matchers):
        return "{" + ", ".join([self.selectors[source], *filter(None, matchers)]) + "}"

    @staticmethod
    def _by(by, default):
        """`by` as given ("" = no grouping), or the default grouping when None."""
        return default if by is None else by

    # --- Tasks (celery-exporter) ---------------------------------------------------------------

    def task_counter(self, counter, *matchers):
        """One of the exporter's task counters: sent, received, started, succeeded, failed, ..."""
        return f"celery_task_{counter}_total{self.sel('exporter', *matchers)}"

    def task_rate(self, counter, window, *matchers, by=None, offset=""):
        by = self._by(by, self.task)
        grouping = f" by ({by}) " if by else " "
        off = f" offset {offset}" if offset else ""
        return f"sum{grouping}(rate({self.task_counter(counter, *matchers)}[{window}]{off}))"

    def finished_rate(self, window, *matchers, by=None, offset=""):
        """Succeeded + failed per second. Two sums, not one __name__ regex: rate() drops the name,
        and the exporter's exception="" failed series then collide with the succeeded ones. A task
        with only one of the two series still counts."""
        succeeded = self.task_rate("succeeded", window, *matchers, by=by, offset=offset)
        failed = self.task_rate("failed", window, *matchers, by=by, offset=offset)
        return f"({succeeded} + {failed}\nor {succeeded}\nor {failed})"

    def success_ratio(self, window, *matchers, by=None):
        """Succeeded / finished; a task that never succeeded (no succeeded series) counts as 0."""
        succeeded = self.task_rate("succeeded", window, *matchers, by=by)
        finished = self.finished_rate(window, *matchers, by=by)
        return f"({succeeded}\nor {finished} * 0)\n/ {finished}"

    def runtime_quantile(self, quantile, window, *matchers, by=None):
        grouping = ", ".join(filter(None, [self._by(by, self.task), "le"]))
        buckets = f"celery_task_runtime_bucket{self.sel('exporter', *matchers)}"
        return f"histogram_quantile({quantile}, sum by ({grouping}) (rate({buckets}[{window}])))"

    # --- Queues: the broker's own metrics (RabbitMQ, Redis), or the celery-exporter's -------------
    # Every broker's series get RabbitMQ's label names (job, vhost, queue), so one alert serves all.

    def queue_depth(self, *matchers, by=None):
        """Messages ready for delivery in Celery's task queues (unacked ones are being worked on)."""
        by = self._by(by, self.queue)
        parts = {
            "rabbitmq": lambda: f"sum by ({by}) ({RabbitMQ.QUEUE_READY}{self.sel('task_queues', *matchers)})",
            "redis": lambda: self.redis_queue_depth(*self._keys(matchers), by=by),
        }
        return self._any_broker(parts, lambda: self._exporter_queue(EXPORTER_QUEUE_LENGTH, matchers, by))

    def queue_consumers(self, *matchers, by=None):
        by = self._by(by, self.queue)
        parts = {
            "rabbitmq": lambda: f"sum by ({by}) ({RabbitMQ.QUEUE_CONSUMERS}{self.sel('task_queues', *matchers)})",
            "redis": lambda: self.redis_queue_consumers(*self._keys(matchers), by=by),
        }
        return self._any_broker(parts, lambda: self._exporter_queue("celery_active_consumer_count", matchers, by))

    def oldest_message_age(self, *matchers, by=None):
        """Seconds since the oldest waiting message of each queue was published, or None: only
        RabbitMQ reports it (a Redis list keeps no time per message). `>= 0` drops the empty queues'
        NaN."""
        if "rabbitmq" not in self.cfg.sources.brokers:
            return None
        by = self._by(by, self.queue)
        head = f"{RabbitMQ.QUEUE_HEAD_TIMESTAMP}{self.sel('task_queues', *matchers)}"
        return f"max by ({by}) (time() - {head}) >= 0"

    def _any_broker(self, parts, exporter):
        """The expression of each broker the Config scrapes, joined with `or` (only the broker in
        use has series); without a broker exporter, the celery-exporter's own view of the queues."""
        brokers = self.cfg.sources.brokers
        if not brokers:
            return exporter()
        return "\nor\n".join(parts[b]() for b in brokers)

    @staticmethod
    def _keys(matchers):
        """A matcher on `queue` applies to the Redis key of that name."""
        return [re.sub(r"^queue\b", "key", m.strip()) for m in matchers if m]

    def _exporter_queue(self, metric, matchers, by):
        """The celery-exporter's per-queue gauge (it asks the broker and the workers), with its
        queue_name label copied to `queue`."""
        names = [re.sub(r"^queue\b", "queue_name", m.strip()) for m in matchers if m]
        series = f'label_replace({metric}{self.sel("exporter", *names)}, "queue", "$1", "queue_name", "(.*)")'
        return f"sum by ({by}) ({series})"

    # --- Queues on a Redis broker (redis_exporter --check-single-keys; celery-exporter) ----------
    # The queue is a list named after it (key="celery"); taken-but-unacknowledged messages sit in
    # the `unacked` hash.

    def redis_sel(self, *matchers):
        return self.sel("redis_broker", *matchers)

    def redis(self, metric, *matchers):
        """One of the redis_exporter's series (Redis.*) of the broker."""
        return f"{metric}{self.redis_sel(*matchers)}"

    def redis_key(self, *matchers):
        return f'label_join({self.redis(Redis.KEY_SIZE, *matchers)}, "queue", "", "key")'

    def redis_queue_depth(self, *matchers, by=None):
        key = self.redis_key('key!="unacked"', *matchers)
        return f"sum by ({self._by(by, self.queue)}) ({key})"

    def redis_unacked(self):
        unacked = self.redis(Redis.KEY_SIZE, 'key="unacked"')
        return f"sum({unacked})"

    def redis_queue_consumers(self, *keys, by=None):
        """Workers consuming each queue (the celery-exporter asks them: active_queues), labelled as
        the broker's series; only while the Redis broker of the same deployment is scraped."""
        queues = [k.replace("key", "queue_name", 1) for k in keys]
        workers = (
            f"label_replace(label_join(celery_active_worker_count{self.sel('exporter', *queues)}, "
            f'"queue", "", "queue_name"), "job", "{self.cfg.jobs.redis_broker}", "job", ".*")'
        )
        return f"(sum by ({self._by(by, self.queue)}) ({workers})\nand on ({self.join}) ({self.redis(Redis.UP)} == 1))"

    def event_queue_depth(self, *matchers):
        """Events waiting for a monitor (Flower, the exporter) in its celeryev.* queue."""
        return f"{RabbitMQ.QUEUE_READY}{self.sel('event_queues', *matchers)}"

    def rabbitmq_queue(self, metric, *matchers):
        """One of RabbitMQ's per-queue series (RabbitMQ.QUEUE_*), every queue (events, pidbox too)."""
        return f"{metric}{self.sel('rabbitmq_queues', *matchers)}"

    def rabbitmq_node(self, metric, *matchers):
        """One of RabbitMQ's node-wide series (RabbitMQ.*)."""
        return f"{metric}{self.sel('rabbitmq', *matchers)}"

    # --- Events lost on the way to a monitor -----------------------------------------------------

    def monitors(self):
        """The event monitors the Config has: exporter, flower."""
        return [m for m in ("exporter", "flower") if getattr(self.cfg.sources, m)]

    def tasks_started_by_workers(self, window, *matchers, by=None):
        """Tasks the workers started in the window, by their own count (one task-started event each)."""
        series = f"celery_worker_tasks_started_total{self.sel('worker', *matchers)}"
        return f"sum by ({self._by(by, self.join)}) (increase({series}[{window}]))"

    def tasks_started_by_monitors(self, window, *matchers, by=None):
        """task-started events each monitor counted in the window; its job label names the monitor.
        A monitor that is up but never counted one (e.g. the workers send no events) counts 0."""
        by = self._by(by, self.scope_join)
        counted = {
            "exporter": self.task_counter("started", *matchers),
            "flower": f"flower_events_total{self.sel('flower', STARTED, *matchers)}",
        }
        parts = [f"sum by ({by}, job) (increase({counted[m]}[{window}]))" for m in self.monitors()]
        up = " or ".join(f"up{self.sel(m, *matchers)}" for m in self.monitors())
        return "\nor ".join(parts + [f"sum by ({by}, job) (({up}) == 1) * 0"])

    @property
    def scope_join(self):
        """The deployment's labels plus the join labels (a monitor's series keep both)."""
        labels = [*self.cfg.labels.scope]
        return ", ".join(labels + [label for label in self.cfg.labels.join if label not in labels])

    def events_lost_ratio(self, window, *matchers, by=None):
        """Share of the tasks the workers started whose task-started event a monitor did not count
        (per monitor). Negative when a monitor also sees workers without their own /metrics. The
        workers and their monitors may run in different namespaces: they match on the join labels."""
        monitors = self.tasks_started_by_monitors(window, *matchers, by=by)
        workers = self.tasks_started_by_workers(window, *matchers)
        return f"1 - (\n{monitors}\n)\n/ on ({self.join}) group_left\n{workers}"

    # --- Workers (each worker's own /metrics; Flower's view) --------------------------------------

    def worker_cpu_ratio(self, window, *matchers, by=None):
        """CPU seconds per second of the worker's process tree over the cores it may use (1.0 = all)."""
        by = self._by(by, self.worker)
        cpu = f"celery_worker_cpu_seconds_total{self.sel('worker', *matchers)}"
        limit = f"celery_worker_cpu_limit_cores{self.sel('worker', *matchers)}"
        return f"sum by ({by}) (rate({cpu}[{window}]))\n/ sum by ({by}) ({limit})"

    def worker_memory(self, *matchers, by=None):
        return f"sum by ({self._by(by, self.worker)}) (celery_worker_memory_rss_bytes{self.sel('worker', *matchers)})"

    def worker_memory_growth(self, window, *matchers, by=None):
        """Resident memory trend of the worker's process tree, bytes per second."""
        rss = f"celery_worker_memory_rss_bytes{self.sel('worker', *matchers)}"
        return f"sum by ({self._by(by, self.worker)}) (deriv({rss}[{window}]))"

    def flower_worker_online(self, *matchers):
        return f"{FLOWER_WORKER_ONLINE}{self.sel('flower', *matchers)}"

    def pool_processes_series(self, *matchers):
        """Pool processes (concurrency) of each worker, as it reports them."""
        return f"{POOL_PROCESSES}{self.sel('worker', *matchers)}"

    def pool_replacements(self, window, *matchers, reason="recycled", by=None):
        """Pool processes the worker replaced within the window (its own /metrics): `recycled` at
        worker_max_memory_per_child or _tasks_per_child, `died` when killed or crashed."""
        series = "celery_worker_pool_process_replacements_total" + self.sel("worker", f'reason=~"{reason}"', *matchers)
        return f"sum by ({self._by(by, self.worker)}) (increase({series}[{window}]))"

    def pool_processes(self, *matchers, by=None):
        return f"sum by ({self._by(by, self.worker)}) ({self.pool_processes_series(*matchers)})"

    def largest_pool_process(self, *matchers, by=None):
        return (
            f"max by ({self._by(by, self.worker)}) "
            f"(celery_worker_pool_process_max_rss_bytes{self.sel('worker', *matchers)})"
        )

    def pool_process_memory_limit(self, *matchers, by=None):
        return (
            f"max by ({self._by(by, self.worker)}) "
            f"(celery_worker_max_memory_per_child_bytes{self.sel('worker', *matchers)})"
        )

    def worker_target_up(self, *matchers):
        return f"up{self.sel('worker', *matchers)}"

    # --- Task latency by stage (each worker's own histograms, worker/latency.py) --------------------
    # stage: queue_wait (published, or due, -> started), prefetch_wait (received -> started), runtime.

    def stage_series(self, stage, suffix, *matchers):
        return f"celery_worker_task_{stage}_seconds_{suffix}{self.sel('worker', *matchers)}"

    def stage_quantile(self, stage, quantile, window, *matchers, by=None):
        """A quantile of one stage over the window, per deployment and queue by default."""
        grouping = ", ".join(filter(None, [self._by(by, self.by_queue), "le"]))
        buckets = self.stage_series(stage, "bucket", *matchers)
        return f"histogram_quantile({quantile}, sum by ({grouping}) (rate({buckets}[{window}])))"

    @property
    def by_queue(self):
        """One queue of one deployment, as the workers label it."""
        return f"{self.deployment}, queue"

    def stage_share_above(self, stage, bound, window, *matchers, by=""):
        """Share of the tasks whose stage took longer than `bound` seconds (a bucket bound)."""
        le = num(bound)
        # The workers' client writes bounds as 30.0; other clients as 30.
        under = self.stage_series(stage, "bucket", *matchers, f'le=~"{le}|{le}.0"')
        total = self.stage_series(stage, "count", *matchers)
        grouping = f" by ({by}) " if by else " "
        return f"1 - sum{grouping}(rate({under}[{window}]))\n/ sum{grouping}(rate({total}[{window}]))"

    def unknown_publish_time_share(self, window, *matchers, by=None):
        """Share of started tasks whose message had no publish time (queue wait not measured)."""
        by = self._by(by, self.by_queue)
        unknown = f"celery_worker_task_queue_wait_unknown_total{self.sel('worker', *matchers)}"
        counted = self.stage_series("prefetch_wait", "count", *matchers)
        return f"sum by ({by}) (rate({unknown}[{window}]))\n/ sum by ({by}) (rate({counted}[{window}]))"

    # --- Views of the community dashboards (per-task statistics over a range, task mix, workers
    # per Flower and per celery-exporter) and the prefetch-wait alert ------------------------------

    @staticmethod
    def _sum(by):
        return f"sum by ({by}) " if by else "sum "

    def task_increase(self, counter, window, *matchers, by="name, queue_name"):
        """Task events of one kind in the window per task; 0 (not missing) for a task received
        but without such an event, so tables and ratios have every row."""

        def increase(name):
            series = self.task_counter(name, *matchers)
            return f"{self._sum(by)}(increase({series}[{window}]))"

        if counter == "received":
            return increase("received")
        return f"{increase(counter)} or {increase('received')} * 0"

    def increase_success_ratio(self, window, *matchers, by="name, queue_name"):
        """Succeeded / (succeeded + failed) counted over the window (e.g. a dashboard's range)."""
        succeeded = f"({self.task_increase('succeeded', window, *matchers, by=by)})"
        failed = f"({self.task_increase('failed', window, *matchers, by=by)})"
        return f"{succeeded} / ({succeeded} + {failed})"

    def mean_runtime(self, window, *matchers, by="name"):
        """Mean runtime of successful runs: _sum / _count of the runtime histogram."""
        sel = self.sel("exporter", *matchers)
        return (
            f"{self._sum(by)}(rate(celery_task_runtime_sum{sel}[{window}]))"
            f" / {self._sum(by)}(rate(celery_task_runtime_count{sel}[{window}]))"
        )

    def increase_runtime_quantile(self, quantile, window, *matchers, by="name, queue_name"):
        """A runtime quantile of all successful runs in the window (not an average of rates)."""
        buckets = f"celery_task_runtime_bucket{self.sel('exporter', *matchers)}"
        grouping = ", ".join(filter(None, [by, "le"]))
        return f"histogram_quantile({quantile}, sum by ({grouping}) (increase({buckets}[{window}])))"

    def task_total(self, counter, window, *matchers):
        return f"sum(increase({self.task_counter(counter, *matchers)}[{window}]))"

    def failed_with_exception(self, *matchers):
        """The exporter's failed-task counters that name an exception (not its zero series)."""
        return self.task_counter("failed", *matchers, WITH_EXCEPTION)

    def top_failing_tasks(self, window, *matchers, limit=10):
        failed = self.failed_with_exception(*matchers)
        return f"sort_desc(topk({limit}, sum by (name) (increase({failed}[{window}]))))"

    def failures_by_task_and_exception(self, window, *matchers):
        failed = self.failed_with_exception(*matchers)
        return f"sort_desc(sum by (name, exception) (increase({failed}[{window}])))"

    def task_mix(self, by, window, *matchers):
        """Tasks received per second by `by` (name or queue_name): the workload's composition."""
        return f"sum by ({by}) (rate({self.task_counter('received', *matchers)}[{window}]))"

    def workers_offline(self, *matchers):
        """Workers Flower reports offline (said goodbye, or silent and not yet purged)."""
        return f"count({self.flower_worker_online(*matchers)} == 0) or vector(0)"

    def exporter_workers(self, up, *matchers):
        """Workers celery-exporter sees up (1) or down (0), by the host part of their names."""
        return f"count({self.exporter_worker_up(*matchers)} == {up}) or vector(0)"

    def exporter_worker_up(self, *matchers):
        """celery-exporter's 1 (a live worker) or 0 per host part of the workers' names."""
        return f"{EXPORTER_WORKER_UP}{self.sel('exporter', *matchers)}"

    def retried_per_worker(self, window, *matchers):
        events = f"flower_events_total{self.sel('flower', *matchers, RETRIED)}"
        return f"sum by (worker) (rate({events}[{window}]))"

    def tasks_per_worker(self, window, *matchers):
        return f"sort_desc(sum by (worker) (increase({self.processed_events(*matchers)}[{window}])))"

    def processed_events(self, *matchers):
        """Flower's count of tasks each worker finished (succeeded or failed), by worker and type."""
        return f"flower_events_total{self.sel('flower', *matchers, PROCESSED)}"

    def prefetch_wait_avg(self, window, *matchers):
        """Average wait of a task at a worker between received (prefetched) and started, per worker
        and task (Flower sets it when a task starts and back to 0 when it finishes)."""
        return f"avg_over_time({self.prefetch_time(*matchers)}[{window}])"

    def prefetch_time(self, *matchers):
        """Flower's wait of each task at its worker, received -> started (0 once it finished)."""
        return f"flower_task_prefetch_time_seconds{self.sel('flower', *matchers)}"
