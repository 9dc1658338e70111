"""Every PromQL expression of the bundle, written once.

Alert rules (mixin/rules.py, via recording rules) and dashboard panels (mixin/dashboards/) both
build their queries here, so a panel shows a signal exactly as its alert computes it: the same
series, the same aggregation, the same window. Selectors come from mixin/config.py.
"""
import re

from mixin import config

# Labels that identify one task type in the celery-exporter's series (hostname is summed away: the
# exporter collapses all workers of a host into it anyway), one broker queue, one worker.
# Every aggregation keeps the deployment (cluster, namespace: absent natively and under compose), so
# one Prometheus can watch several deployments and each alert says which one it is about.
DEPLOYMENT = "cluster, namespace, job"
TASK = f"{DEPLOYMENT}, name, queue_name"
QUEUE = f"{DEPLOYMENT}, vhost, queue"
WORKER = f"{DEPLOYMENT}, instance, worker"
PER_DEPLOYMENT = "cluster, namespace"  # across jobs: one deployment's workers against its monitors
WITH_EXCEPTION = 'exception!=""'  # the exporter adds exception="" failure series at zero
RETRIED = 'type="task-retried"'  # Flower's event types
STARTED = 'type="task-started"'
PROCESSED = 'type=~"task-succeeded|task-failed"'


def num(x):
    """A number as PromQL text: 20 not 20.0, full precision otherwise."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


class Queries:
    """Expressions over the selectors given (the rules' plain job matchers by default).

    A dashboard passes selectors that carry its template variables; the expressions stay the same.
    """

    def __init__(self, selectors=None):
        self.selectors = selectors or config.SELECTORS

    def sel(self, source, *matchers):
        return "{" + ", ".join([self.selectors[source], *filter(None, matchers)]) + "}"

    # --- Tasks (celery-exporter) ---------------------------------------------------------------

    def task_rate(self, counter, window, *matchers, by=TASK, offset=""):
        grouping = f" by ({by}) " if by else " "
        off = f" offset {offset}" if offset else ""
        return f"sum{grouping}(rate(celery_task_{counter}_total{self.sel('exporter', *matchers)}[{window}]{off}))"

    def finished_rate(self, window, *matchers, by=TASK, offset=""):
        """Succeeded + failed per second. Two sums, not one __name__ regex: rate() drops the name,
        and the exporter's exception="" failed series then collide with the succeeded ones. A task
        with only one of the two series still counts."""
        succeeded = self.task_rate("succeeded", window, *matchers, by=by, offset=offset)
        failed = self.task_rate("failed", window, *matchers, by=by, offset=offset)
        return f"({succeeded} + {failed}\nor {succeeded}\nor {failed})"

    def success_ratio(self, window, *matchers, by=TASK):
        """Succeeded / finished; a task that never succeeded (no succeeded series) counts as 0."""
        succeeded = self.task_rate("succeeded", window, *matchers, by=by)
        finished = self.finished_rate(window, *matchers, by=by)
        return f"({succeeded}\nor {finished} * 0)\n/ {finished}"

    def runtime_quantile(self, quantile, window, *matchers, by=TASK):
        grouping = ", ".join(filter(None, [by, "le"]))
        buckets = f"celery_task_runtime_bucket{self.sel('exporter', *matchers)}"
        return f"histogram_quantile({quantile}, sum by ({grouping}) (rate({buckets}[{window}])))"

    # --- Queues (RabbitMQ's per-queue metrics: ready messages, consumers) ------------------------

    def queue_depth(self, *matchers, by=QUEUE):
        """Messages ready for delivery in Celery's task queues (unacked ones are being worked on)."""
        rabbitmq = f"sum by ({by}) (rabbitmq_detailed_queue_messages_ready{self.sel('task_queues', *matchers)})"
        return self._any_broker(rabbitmq, self.redis_queue_depth, matchers, by)

    def queue_consumers(self, *matchers, by=QUEUE):
        rabbitmq = f"sum by ({by}) (rabbitmq_detailed_queue_consumers{self.sel('task_queues', *matchers)})"
        return self._any_broker(rabbitmq, self.redis_queue_consumers, matchers, by)

    def _any_broker(self, rabbitmq, redis, matchers, by):
        """The RabbitMQ expression, `or` the Redis one when config.BROKERS has redis; a matcher on
        `queue` applies to the Redis key of that name."""
        if "redis" not in config.BROKERS:
            return rabbitmq
        keys = [re.sub(r"^queue\b", "key", m.strip()) for m in matchers if m]
        return f"{rabbitmq}\nor\n{redis(*keys, by=by)}"

    # --- Queues on a Redis broker (redis_exporter --check-single-keys; celery-exporter) ----------
    # The queue is a list named after it (key="celery"); taken-but-unacknowledged messages sit in
    # the `unacked` hash. Both get RabbitMQ's label names (job, vhost, queue) so one alert serves both.

    def redis_sel(self, *matchers):
        return "{" + ", ".join([self.selectors.get("redis_broker", config.SELECTORS["redis_broker"]),
                                *filter(None, matchers)]) + "}"

    def redis_key(self, *matchers):
        return f'label_join(redis_key_size{self.redis_sel(*matchers)}, "queue", "", "key")'

    def redis_queue_depth(self, *matchers, by=QUEUE):
        key = self.redis_key('key!="unacked"', *matchers)
        return f"sum by ({by}) ({key})"

    def redis_unacked(self):
        return "sum(redis_key_size" + self.redis_sel('key="unacked"') + ")"

    def redis_queue_consumers(self, *keys, by=QUEUE):
        """Workers consuming each queue (the celery-exporter asks them: active_queues), labelled as
        the broker's series; only while the Redis broker is scraped."""
        queues = [k.replace("key", "queue_name", 1) for k in keys]
        workers = (f'label_replace(label_join(celery_active_worker_count{self.sel("exporter", *queues)}, '
                   f'"queue", "", "queue_name"), "job", "{config.REDIS_BROKER_JOB}", "job", ".*")')
        return f"(sum by ({by}) ({workers})\nand on () (redis_up{self.redis_sel()} == 1))"

    def event_queue_depth(self, *matchers):
        """Events waiting for a monitor (Flower, the exporter) in its celeryev.* queue."""
        return f"rabbitmq_detailed_queue_messages_ready{self.sel('event_queues', *matchers)}"

    # --- Events lost on the way to a monitor -----------------------------------------------------

    def tasks_started_by_workers(self, window, *matchers, by=PER_DEPLOYMENT):
        """Tasks the workers started in the window, by their own count (one task-started event each)."""
        return f"sum by ({by}) (increase(celery_worker_tasks_started_total{self.sel('worker', *matchers)}[{window}]))"

    def tasks_started_by_monitors(self, window, *matchers, by=PER_DEPLOYMENT):
        """task-started events each monitor counted in the window; its job label names the monitor.
        A monitor that is up but never counted one (e.g. the workers send no events) counts 0."""
        exporter = f"celery_task_started_total{self.sel('exporter', *matchers)}"
        flower = f"flower_events_total{self.sel('flower', STARTED, *matchers)}"
        up = " or ".join(f"up{self.sel(source, *matchers)}" for source in ("exporter", "flower"))
        return (f"sum by ({by}, job) (increase({exporter}[{window}]))\n"
                f"or sum by ({by}, job) (increase({flower}[{window}]))\n"
                f"or sum by ({by}, job) (({up}) == 1) * 0")

    def events_lost_ratio(self, window, *matchers, by=PER_DEPLOYMENT):
        """Share of the tasks the workers started whose task-started event a monitor did not count
        (per monitor). Negative when a monitor also sees workers without their own /metrics."""
        monitors = self.tasks_started_by_monitors(window, *matchers, by=by)
        workers = self.tasks_started_by_workers(window, *matchers, by=by)
        return f"1 - (\n{monitors}\n)\n/ on ({by}) group_left\n{workers}"

    # --- Workers (each worker's own /metrics; Flower's view) --------------------------------------

    def worker_cpu_ratio(self, window, *matchers, by=WORKER):
        """CPU seconds per second of the worker's process tree over the cores it may use (1.0 = all)."""
        cpu = f"celery_worker_cpu_seconds_total{self.sel('worker', *matchers)}"
        limit = f"celery_worker_cpu_limit_cores{self.sel('worker', *matchers)}"
        return f"sum by ({by}) (rate({cpu}[{window}]))\n/ sum by ({by}) ({limit})"

    def worker_memory(self, *matchers, by=WORKER):
        return f"sum by ({by}) (celery_worker_memory_rss_bytes{self.sel('worker', *matchers)})"

    def worker_memory_growth(self, window, *matchers, by=WORKER):
        """Resident memory trend of the worker's process tree, bytes per second."""
        rss = f"celery_worker_memory_rss_bytes{self.sel('worker', *matchers)}"
        return f"sum by ({by}) (deriv({rss}[{window}]))"

    def flower_worker_online(self, *matchers):
        return f"flower_worker_online{self.sel('flower', *matchers)}"

    def pool_replacements(self, window, *matchers, reason="recycled", by=WORKER):
        """Pool processes the worker replaced within the window (its own /metrics): `recycled` at
        worker_max_memory_per_child or _tasks_per_child, `died` when killed or crashed."""
        series = "celery_worker_pool_process_replacements_total" + self.sel(
            "worker", f'reason=~"{reason}"', *matchers)
        return f"sum by ({by}) (increase({series}[{window}]))"

    def pool_processes(self, *matchers, by=WORKER):
        return f"sum by ({by}) (celery_worker_pool_processes{self.sel('worker', *matchers)})"

    def largest_pool_process(self, *matchers, by=WORKER):
        return f"max by ({by}) (celery_worker_pool_process_max_rss_bytes{self.sel('worker', *matchers)})"

    def pool_process_memory_limit(self, *matchers, by=WORKER):
        return f"max by ({by}) (celery_worker_max_memory_per_child_bytes{self.sel('worker', *matchers)})"

    def worker_target_up(self, *matchers):
        return f"up{self.sel('worker', *matchers)}"

    # --- Views of the community dashboards (per-task statistics over a range, task mix, workers
    # per Flower and per celery-exporter) and the prefetch-wait alert ------------------------------

    @staticmethod
    def _sum(by):
        return f"sum by ({by}) " if by else "sum "

    def task_increase(self, counter, window, *matchers, by="name, queue_name"):
        """Task events of one kind in the window per task; 0 (not missing) for a task received
        but without such an event, so tables and ratios have every row."""
        def increase(name):
            series = f"celery_task_{name}_total{self.sel('exporter', *matchers)}"
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
        return (f"{self._sum(by)}(rate(celery_task_runtime_sum{sel}[{window}]))"
                f" / {self._sum(by)}(rate(celery_task_runtime_count{sel}[{window}]))")

    def increase_runtime_quantile(self, quantile, window, *matchers, by="name, queue_name"):
        """A runtime quantile of all successful runs in the window (not an average of rates)."""
        buckets = f"celery_task_runtime_bucket{self.sel('exporter', *matchers)}"
        grouping = ", ".join(filter(None, [by, "le"]))
        return f"histogram_quantile({quantile}, sum by ({grouping}) (increase({buckets}[{window}])))"

    def task_total(self, counter, window, *matchers):
        return f"sum(increase(celery_task_{counter}_total{self.sel('exporter', *matchers)}[{window}]))"

    def top_failing_tasks(self, window, *matchers, limit=10):
        failed = f"celery_task_failed_total{self.sel('exporter', *matchers, WITH_EXCEPTION)}"
        return f"sort_desc(topk({limit}, sum by (name) (increase({failed}[{window}]))))"

    def failures_by_task_and_exception(self, window, *matchers):
        failed = f"celery_task_failed_total{self.sel('exporter', *matchers, WITH_EXCEPTION)}"
        return f"sort_desc(sum by (name, exception) (increase({failed}[{window}])))"

    def task_mix(self, by, window, *matchers):
        """Tasks received per second by `by` (name or queue_name): the workload's composition."""
        return f"sum by ({by}) (rate(celery_task_received_total{self.sel('exporter', *matchers)}[{window}]))"

    def workers_offline(self, *matchers):
        """Workers Flower reports offline (said goodbye, or silent and not yet purged)."""
        return f"count({self.flower_worker_online(*matchers)} == 0) or vector(0)"

    def exporter_workers(self, up, *matchers):
        """Workers celery-exporter sees up (1) or down (0), by the host part of their names."""
        return f"count(celery_worker_up{self.sel('exporter', *matchers)} == {up}) or vector(0)"

    def retried_per_worker(self, window, *matchers):
        events = f"flower_events_total{self.sel('flower', *matchers, RETRIED)}"
        return f"sum by (worker) (rate({events}[{window}]))"

    def tasks_per_worker(self, window, *matchers):
        events = f"flower_events_total{self.sel('flower', *matchers, PROCESSED)}"
        return f"sort_desc(sum by (worker) (increase({events}[{window}])))"

    def prefetch_wait_avg(self, window, *matchers):
        """Average wait of a task at a worker between received (prefetched) and started, per worker
        and task (Flower sets it when a task starts and back to 0 when it finishes)."""
        return f"avg_over_time(flower_task_prefetch_time_seconds{self.sel('flower', *matchers)}[{window}])"
