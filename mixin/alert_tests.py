"""promtool unit tests generated from a Config: for a user's configuration and for the profiles
other than the bundle's standard one (whose tests in alerts/tests/ are written by hand, with
literal values).

Each alert gets cases on both sides of its threshold: just past it (fires once its `for` has
passed) and just short of it (stays silent), so the cases follow the Config's thresholds, job
names, labels and sources. A case checks the ALERTS series promtool records
(`alertstate="firing"`). Checks of alerts the Config does not render are left out.
"""

import re

from mixin import alerts, rules, slo
from mixin.alerts.pipeline import scraped_jobs
from mixin.config import Config
from mixin.durations import fmt, seconds
from mixin.queries import EXPORTER_QUEUE_LENGTH, RabbitMQ, Redis, num

# Just past / just short of a threshold, as a fraction of it.
NUDGE = 0.02
HPA = "keda-hpa-obs-celery-observability-workers"  # KEDA's name for the chart's ScaledObject


def counter(*phases):
    """A counter increasing by `inc` per sample for `n` samples, phase after phase: 'a+bxN c+dxM'."""
    parts, value = [], 0.0
    for inc, n in phases:
        parts.append(f"{value:g}+{inc:g}x{n}")
        value += inc * (n + 1)
    return " ".join(parts)


def gauge(value, n):
    return f"{value:g}x{n}"


def firing(name, at, *label_sets, fires=True, where=None):
    """An expectation on ALERTS at `at` seconds: the alert fires once per label set, or not at all;
    `where` narrows the check to the alerts with those labels."""
    narrow = "".join(f', {k}="{v}"' for k, v in (where or {}).items())
    matcher = f'ALERTS{{alertname="{name}", alertstate="firing"{narrow}}}'
    expected = [
        {
            "labels": "{"
            + ", ".join(
                ['__name__="ALERTS"', f'alertname="{name}"', 'alertstate="firing"']
                + [f'{k}="{v}"' for k, v in sorted(labels.items())]
            )
            + "}",
            "value": 1,
        }
        for labels in (label_sets if fires else ())
    ]
    return {"expr": matcher, "eval_time": fmt(at), "exp_samples": expected}


def case(name, step, series, checks):
    return {
        "name": name,
        "interval": fmt(step),
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": checks,
    }


def step_of(cfg: Config):
    """Seconds between samples: 15 s, or less when the shortest window needs more samples, never
    below the scrape interval."""
    t = cfg.thresholds
    shortest = min(seconds(v) for k, v in t.knobs().items() if k.endswith("_window"))
    scrape = seconds(cfg.scrape_interval)
    return max(scrape, min(15, shortest // 4 // scrape * scrape))


class Cases:
    def __init__(self, cfg: Config):
        self.cfg, self.t, self.jobs = cfg, cfg.thresholds, cfg.jobs
        self.step = step_of(cfg)
        self.rendered = {a.name: a for a in alerts.build(cfg)}
        # Every input series carries the deployment label when the Config joins on one (the chart's
        # value for release obs in namespace celery: `<namespace>/<fullname>`).
        dep = cfg.labels.deployment
        self.dep = {dep: "celery/obs-celery-observability"} if dep else {}
        extra = "".join(f', {k}="{v}"' for k, v in self.dep.items())
        self.EXPORTER = f'job="{self.jobs.exporter}", instance="exporter:9808"{extra}'
        self.QUEUES = f'job="{self.jobs.rabbitmq_queues}", instance="rabbitmq:15692", vhost="/"{extra}'
        self.WORKER = f'job="{self.jobs.worker}", instance="worker:9191", worker="celery_worker-1@host-1"{extra}'
        self.FLOWER = f'job="{self.jobs.flower}", instance="flower:5555"{extra}'
        self.EXTRA = extra

    def s(self, knob):
        return seconds(getattr(self.t, knob))

    def samples(self, secs):
        return int(secs // self.step) + 1

    def labels(self, alert, **extra):
        """The labels `alert` fires with; its checks are dropped later when the Config does not render it."""
        severity = self.rendered[alert].severity if alert in self.rendered else "none"
        return {"severity": severity, **self.cfg.rule_labels, **self.dep, **extra}

    def task_rate(self):
        """Tasks per second that put twice the minimum number of tasks into a success window."""
        return max(2 * self.t.success_min_tasks / self.s("success_window"), 1 / self.step)

    # --- success rate ---------------------------------------------------------------------------
    def success(self):
        t, step = self.t, self.step
        r = self.task_rate() * step
        at = 2 * self.s("success_window") + self.s("success_for") + 4 * step
        n = self.samples(at) + 4
        low, high = t.success_ratio_min * (1 - NUDGE / 10), min(t.success_ratio_min * (1 + NUDGE / 10), 1)

        def task(name, ratio, rate=r):
            base = f'{self.EXPORTER}, name="{name}", hostname="host-1", queue_name="celery"'
            return [
                (f"celery_task_succeeded_total{{{base}}}", counter((rate * ratio, n))),
                (f'celery_task_failed_total{{{base}, exception="RuntimeError"}}', counter((rate * (1 - ratio), n))),
            ]

        job = self.jobs.exporter
        few = t.success_min_tasks / self.s("success_window") * step / 2
        return [
            case(
                "one task just below the success ratio, another just above",
                step,
                task("failing_task", low) + task("healthy_task", high),
                [
                    firing(
                        "CeleryTaskSuccessRateLow",
                        at,
                        self.labels("CeleryTaskSuccessRateLow", job=job, name="failing_task", queue_name="celery"),
                    )
                ],
            ),
            case(
                "all tasks just below the success ratio",
                step,
                task("failing_task", low),
                [firing("CelerySuccessRateLow", at, self.labels("CelerySuccessRateLow", job=job))],
            ),
            case(
                "all tasks just above the success ratio",
                step,
                task("healthy_task", high),
                [firing("CelerySuccessRateLow", at, fires=False), firing("CeleryTaskSuccessRateLow", at, fires=False)],
            ),
            case(
                "every task fails, but fewer than the minimum finished",
                step,
                task("rare_task", 0, few),
                [firing("CelerySuccessRateLow", at, fires=False), firing("CeleryTaskSuccessRateLow", at, fires=False)],
            ),
        ]

    # --- runtime --------------------------------------------------------------------------------
    def runtime(self):
        t, step = self.t, self.step
        r = self.task_rate() * step
        # Baseline: every run in (0, b], p95 = 0.95 b. Then every run in (b, c]: p95 = b + 0.95 (c - b).
        b = max(1.0, 2 * t.runtime_p95_min_seconds / 0.95)
        before = self.s("runtime_baseline_window") + self.s("runtime_baseline_offset") + self.s("success_window")
        at = before + self.s("success_window") + self.s("runtime_for") + 2 * step
        p1, p2 = self.samples(before), self.samples(at - before) + 4

        def series(ratio):
            c = b + (ratio * 0.95 * b - b) / 0.95
            base = f'{self.EXPORTER}, name="slow_task", hostname="host-1", queue_name="celery"'
            return [
                (f'celery_task_runtime_bucket{{{base}, le="{b:g}"}}', counter((r, p1), (0, p2))),
                (f'celery_task_runtime_bucket{{{base}, le="{c:g}"}}', counter((r, p1), (r, p2))),
                (f'celery_task_runtime_bucket{{{base}, le="+Inf"}}', counter((r, p1), (r, p2))),
                (f"celery_task_succeeded_total{{{base}}}", counter((r, p1), (r, p2))),
            ]

        ratio = t.runtime_p95_ratio_max
        job = self.jobs.exporter
        return [
            case(
                "p95 rises just above its allowed multiple of the baseline",
                step,
                series(ratio * (1 + NUDGE)),
                [
                    firing(
                        "CeleryTaskRuntimeRising",
                        at,
                        self.labels("CeleryTaskRuntimeRising", job=job, name="slow_task", queue_name="celery"),
                    )
                ],
            ),
            case(
                "p95 rises to just below its allowed multiple of the baseline",
                step,
                series(ratio * (1 - NUDGE)),
                [firing("CeleryTaskRuntimeRising", at, fires=False)],
            ),
        ]

    # --- queues ---------------------------------------------------------------------------------
    def queue_series(self, n):
        """(series of one queue, the labels its alerts carry) for the Config's first broker
        exporter, or the celery-exporter's own queue metrics without one."""
        broker = (self.cfg.sources.brokers or ("exporter",))[0]

        def rabbitmq(ready, consumers=1, name="celery"):
            return [
                (f'{RabbitMQ.QUEUE_READY}{{{self.QUEUES}, queue="{name}"}}', ready),
                (f'{RabbitMQ.QUEUE_CONSUMERS}{{{self.QUEUES}, queue="{name}"}}', gauge(consumers, n)),
            ]

        def redis(ready, consumers=1, name="celery"):
            broker_sel = f'job="{self.jobs.redis_broker}", instance="redis-exporter:9121"{self.EXTRA}'
            return [
                (f'{Redis.KEY_SIZE}{{{broker_sel}, db="db0", key="{name}"}}', ready),
                (f'celery_active_worker_count{{{self.EXPORTER}, queue_name="{name}"}}', gauge(consumers, n)),
                (f"{Redis.UP}{{{broker_sel}}}", gauge(1, n)),
            ]

        def exporter(ready, consumers=1, name="celery"):
            return [
                (f'{EXPORTER_QUEUE_LENGTH}{{{self.EXPORTER}, queue_name="{name}"}}', ready),
                (f'celery_active_consumer_count{{{self.EXPORTER}, queue_name="{name}"}}', gauge(consumers, n)),
            ]

        job = {"rabbitmq": self.jobs.rabbitmq_queues, "redis": self.jobs.redis_broker, "exporter": self.jobs.exporter}[
            broker
        ]
        labels = {"job": job, "queue": "celery", **({"vhost": "/"} if broker == "rabbitmq" else {})}
        return {"rabbitmq": rabbitmq, "redis": redis, "exporter": exporter}[broker], labels, broker

    def queues(self):
        t, step = self.t, self.step
        backlog = t.queue_backlog_max
        at = self.s("queue_backlog_for") + 4 * step
        n = max(self.samples(at), self.samples(self.s("queue_growth_window") + self.s("queue_growth_for"))) + 8
        series, labels, broker = self.queue_series(n)

        def queue(ready, consumers=1, name="celery"):
            return series(gauge(ready, n), consumers, name)

        growth = t.queue_growth_min_per_minute
        g_at = self.s("queue_growth_window") + self.s("queue_growth_for") + 4 * step

        def growing(per_minute):
            return series(f"{backlog + 1:g}+{per_minute / 60 * step:g}x{n}")

        # Only RabbitMQ has per-worker pidbox and event queues next to the task queues.
        others = (
            (
                queue(backlog * 10 + 1, name="celeryev.monitor")
                + queue(backlog * 10 + 1, name="celery@host-1.celery.pidbox")
            )
            if broker == "rabbitmq"
            else []
        )
        nc_at = self.s("queue_no_consumer_for") + 4 * step
        return [
            case(
                "one message more than the backlog threshold",
                step,
                queue(backlog + 1),
                [firing("CeleryQueueBacklog", at, self.labels("CeleryQueueBacklog", **labels))],
            ),
            case(
                "exactly the backlog threshold; pidbox and event queues never count",
                step,
                queue(backlog) + others,
                [firing("CeleryQueueBacklog", at, fires=False)],
            ),
            case(
                "a backlog growing just faster than the threshold",
                step,
                growing(growth * (1 + NUDGE)),
                [firing("CeleryQueueGrowing", g_at, self.labels("CeleryQueueGrowing", **labels))],
            ),
            case(
                "a backlog growing just slower than the threshold",
                step,
                growing(growth * (1 - NUDGE)),
                [firing("CeleryQueueGrowing", g_at, fires=False)],
            ),
            case(
                "messages ready and no consumer",
                step,
                queue(1, consumers=0),
                [firing("CeleryQueueNoConsumer", nc_at, self.labels("CeleryQueueNoConsumer", **labels))],
            ),
            case(
                "messages ready and a consumer, or no message and no consumer",
                step,
                queue(1, consumers=1) + queue(0, consumers=0, name="idle"),
                [firing("CeleryQueueNoConsumer", nc_at, fires=False)],
            ),
            *self.autoscaled_queues(series, labels, n),
        ]

    def hpa(self, current, maximum, n, namespace="celery", cluster=None):
        ksm = f'job="kube-state-metrics", namespace="{namespace}", horizontalpodautoscaler="{HPA}"' + (
            f', cluster="{cluster}"' if cluster else ""
        )
        return [
            (f"kube_horizontalpodautoscaler_status_current_replicas{{{ksm}}}", gauge(current, n)),
            (f"kube_horizontalpodautoscaler_spec_max_replicas{{{ksm}}}", gauge(maximum, n)),
        ]

    def autoscaled_queues(self, series, labels, n):
        """Workers autoscaled by KEDA: a backlog pages only once they are at their maximum."""
        if not self.cfg.autoscaling.keda:
            return []
        backlog, step = self.t.queue_backlog_max, self.step
        at = self.s("queue_backlog_for") + 4 * step
        # The chart's queue series carry the namespace the HPA is in (or the deployment label).
        ns = {} if self.cfg.labels.deployment else {self.cfg.labels.namespace: "celery"}
        with_ns = "".join(f', {k}="{v}"' for k, v in ns.items())

        def ready():
            return [
                (name.replace("}", with_ns + "}", 1) if with_ns else name, values)
                for name, values in series(gauge(backlog * 5, n))
            ]

        return [
            case(
                "a backlog while KEDA still adds workers",
                step,
                ready() + self.hpa(3, 10, n),
                [firing("CeleryQueueBacklog", at, fires=False), firing("CeleryQueueGrowing", at, fires=False)],
            ),
            case(
                "a backlog with the workers at KEDA's maximum replicas",
                step,
                ready() + self.hpa(10, 10, n),
                [firing("CeleryQueueBacklog", at, self.labels("CeleryQueueBacklog", **labels, **ns))],
            ),
        ]

    # --- worker resources -----------------------------------------------------------------------
    def resources(self):
        t, step = self.t, self.step
        cores = 2
        at = self.s("worker_cpu_window") + self.s("worker_cpu_for") + 4 * step
        n = self.samples(at) + 4

        def cpu(ratio):
            return [
                (f"celery_worker_cpu_seconds_total{{{self.WORKER}}}", counter((ratio * cores * step, n))),
                (f"celery_worker_cpu_limit_cores{{{self.WORKER}}}", gauge(cores, n)),
            ]

        growth = t.worker_memory_growth_bytes_per_s
        m_at = self.s("worker_memory_window") + self.s("worker_memory_for") + 4 * step
        m_n = self.samples(m_at) + 4

        def memory(per_s):
            return [(f"celery_worker_memory_rss_bytes{{{self.WORKER}}}", f"{200 * 2**20}+{per_s * step:g}x{m_n}")]

        worker = {"job": self.jobs.worker, "instance": "worker:9191", "worker": "celery_worker-1@host-1"}
        ratio = t.worker_cpu_ratio_max
        return [
            case(
                "CPU just above the limit",
                step,
                cpu(min(ratio * (1 + NUDGE), 1)),
                [firing("CeleryWorkerCpuHigh", at, self.labels("CeleryWorkerCpuHigh", **worker))],
            ),
            case(
                "CPU just below the limit",
                step,
                cpu(ratio * (1 - NUDGE)),
                [firing("CeleryWorkerCpuHigh", at, fires=False)],
            ),
            case(
                "memory growing just faster than the threshold",
                step,
                memory(growth * (1 + NUDGE)),
                [firing("CeleryWorkerMemoryGrowing", m_at, self.labels("CeleryWorkerMemoryGrowing", **worker))],
            ),
            case(
                "memory growing just slower than the threshold",
                step,
                memory(growth * (1 - NUDGE)),
                [firing("CeleryWorkerMemoryGrowing", m_at, fires=False)],
            ),
        ]

    def recycling(self):
        t, step = self.t, self.step
        pool, limit = 2, t.pool_recycling_per_process_max
        window = self.s("pool_recycling_window")
        at = window + self.s("pool_recycling_for") + 4 * step
        n = self.samples(at) + 4

        def recycled(per_process):
            per_step = pool * per_process * step / window
            return [
                (
                    f'celery_worker_pool_process_replacements_total{{{self.WORKER}, reason="recycled"}}',
                    counter((per_step, n)),
                ),
                (f'celery_worker_pool_process_replacements_total{{{self.WORKER}, reason="died"}}', gauge(0, n)),
                (f"celery_worker_pool_processes{{{self.WORKER}}}", gauge(pool, n)),
            ]

        worker = {"job": self.jobs.worker, "instance": "worker:9191", "worker": "celery_worker-1@host-1"}
        return [
            case(
                "each pool process recycled just more often than allowed",
                step,
                recycled(limit * (1 + 5 * NUDGE)),
                [firing("CeleryWorkerPoolRecycling", at, self.labels("CeleryWorkerPoolRecycling", **worker))],
            ),
            case(
                "each pool process recycled just less often than allowed",
                step,
                recycled(limit * (1 - 5 * NUDGE)),
                [firing("CeleryWorkerPoolRecycling", at, fires=False)],
            ),
        ]

    # --- throughput -----------------------------------------------------------------------------
    def throughput(self):
        """The baseline is a day back: samples (and evaluations, each over every rule) half a
        success window apart keep promtool's work small; a rate still sees three of them (window ends included)."""
        t = self.t
        step = max(self.step, self.s("success_window") // 2)
        r = self.task_rate() * step
        before = self.s("throughput_baseline_offset") + self.s("success_window") + 2 * step
        at = before + self.s("success_window") + self.s("throughput_for") + 2 * step
        p1, p2 = int(before // step) + 1, int((at - before) // step) + 5

        def series(ratio):
            base = f'{self.EXPORTER}, name="task", hostname="host-1", queue_name="celery"'
            return [(f"celery_task_succeeded_total{{{base}}}", counter((r, p1), (r * ratio, p2)))]

        ratio = t.throughput_ratio_min
        return [
            case(
                "throughput drops just below its share of the baseline",
                step,
                series(ratio * (1 - NUDGE)),
                [
                    firing(
                        "CeleryThroughputBelowBaseline",
                        at,
                        self.labels("CeleryThroughputBelowBaseline", job=self.jobs.exporter),
                    )
                ],
            ),
            case(
                "throughput drops to just above its share of the baseline",
                step,
                series(ratio * (1 + NUDGE)),
                [firing("CeleryThroughputBelowBaseline", at, fires=False)],
            ),
        ]

    # --- workers and targets --------------------------------------------------------------------
    def workers(self):
        return self.worker_down_cases() + self.no_worker_cases() + self.target_cases()

    def worker_series(self):
        """Timing and series shared by the worker cases."""
        step, down = self.step, self.s("worker_down_for")
        on = self.samples(down) + 2  # samples online before the change
        at = (on + 1) * step + down + 3 * step
        return {
            "step": step,
            "on": on,
            "at": at,
            "n": self.samples(at) + 4,
            "w1": "celery_worker-1@host-1",
            "w2": "celery_worker-2@host-2",
            "online": ("flower_worker_online{" + self.FLOWER + ', worker="%s"}').__mod__,
            "flower": {"job": self.jobs.flower, "instance": "flower:5555"},
            "up": f'up{{job="{self.jobs.worker}", instance="worker:9191"{self.EXTRA}}}',
            "host": f'celery_worker_up{{{self.EXPORTER}, hostname="host-1"}}',
            "target": f"up{{{self.EXPORTER}}}",
            "host_labels": self.labels(
                "CeleryWorkerHostDown", job=self.jobs.exporter, instance="exporter:9808", hostname="host-1"
            ),
            # Autoscaled: a clean shutdown is a scale-down, not a worker down.
            "keda": self.cfg.autoscaling.keda and self.cfg.sources.flower,
        }

    def worker_down_cases(self):
        v = self.worker_series()
        step, on, at, n, w1, w2, online = (v[k] for k in ("step", "on", "at", "n", "w1", "w2", "online"))
        down_labels = self.labels("CeleryWorkerDown", worker=w1, **v["flower"])
        return [
            case(
                "a worker shut down cleanly (scale-down), another online"
                if v["keda"]
                else "a worker reported offline, another online",
                step,
                [(online(w1), f"1x{on} 0x{n}"), (online(w2), gauge(1, n + on)), (v["host"], f"1x{on} 0x{n}")],
                [
                    firing("CeleryWorkerDown", at, fires=False)
                    if v["keda"]
                    else firing("CeleryWorkerDown", at, down_labels),
                    firing("CeleryWorkerHostDown", at, fires=False)
                    if v["keda"]
                    else firing("CeleryWorkerHostDown", at, v["host_labels"]),
                ],
            ),
            case(
                "a worker killed: Flower loses it while online, the exporter times it out",
                step,
                [(online(w1), f"1x{on} stale"), (online(w2), gauge(1, n + on)), (v["host"], f"1x{on} 0x{n}")],
                [firing("CeleryWorkerDown", at, down_labels), firing("CeleryWorkerHostDown", at, v["host_labels"])],
            ),
        ]

    def no_worker_cases(self):
        v = self.worker_series()
        step, on, at, n, w1, w2, online = (v[k] for k in ("step", "on", "at", "n", "w1", "w2", "online"))
        # Sources that say "no worker": each one the Config has fires with its own job.
        sources = [
            k
            for k in ("worker", "flower", "exporter")
            if getattr(self.cfg.sources, "worker_metrics" if k == "worker" else k)
        ]
        monitors_up = [(v["target"], gauge(1, n + on)), (f"up{{{self.FLOWER}}}", gauge(1, n + on))]
        return [
            case(
                "every worker stays online",
                step,
                [
                    (online(w1), gauge(1, n + on)),
                    (online(w2), gauge(1, n + on)),
                    (v["up"], gauge(1, n + on)),
                    (v["host"], gauge(1, n + on)),
                    *monitors_up,
                ],
                [
                    firing("CeleryWorkerDown", at, fires=False),
                    firing("CeleryNoWorkerOnline", at, fires=False),
                    firing("CeleryWorkerHostDown", at, fires=False),
                ],
            ),
            case(
                "no worker online anywhere",
                step,
                [(online(w1), f"1x{on} 0x{n}"), (v["up"], f"1x{on} 0x{n}"), (v["host"], f"1x{on} 0x{n}"), *monitors_up],
                [
                    firing(
                        "CeleryNoWorkerOnline",
                        at,
                        *(self.labels("CeleryNoWorkerOnline", job=getattr(self.jobs, k)) for k in sources),
                    ),
                    firing("CeleryWorkerHostDown", at, fires=False)
                    if v["keda"]
                    else firing("CeleryWorkerHostDown", at, v["host_labels"]),
                ],
            ),
        ]

    def target_cases(self):
        step = self.step
        t_at = self.s("target_down_for") + 4 * step
        # A target of a job the Config scrapes (the exporter's unless the Config has none).
        scraped_job = next(iter(scraped_jobs(self.cfg)), self.jobs.exporter)
        scraped = f'up{{job="{scraped_job}", instance="target:9999"{self.EXTRA}}}'
        labels = self.labels("CeleryTargetDown", job=scraped_job, instance="target:9999")
        return [
            case(
                "a scrape target down",
                step,
                [(scraped, gauge(0, self.samples(t_at) + 4))],
                [firing("CeleryTargetDown", t_at, labels)],
            ),
            case(
                "a scrape target up",
                step,
                [(scraped, gauge(1, self.samples(t_at) + 4))],
                [firing("CeleryTargetDown", t_at, fires=False)],
            ),
        ]

    # --- queue wait (the workers' own histogram) --------------------------------------------------
    def queue_wait(self):
        t, step = self.t, self.step
        limit = t.queue_wait_p95_max_seconds
        at = self.s("queue_wait_window") + self.s("queue_wait_for") + 4 * step
        n = self.samples(at) + 4
        base = f'{self.WORKER}, task="process_task", queue="celery"'

        def waits(p95):
            # Every wait in (limit/2, c]: p95 = limit/2 + 0.95 (c - limit/2).
            b = limit / 2
            c = b + (p95 - b) / 0.95
            name = "celery_worker_task_queue_wait_seconds_bucket"
            return [
                (f'{name}{{{base}, le="{b:g}"}}', gauge(0, n)),
                (f'{name}{{{base}, le="{c:g}"}}', counter((10, n))),
                (f'{name}{{{base}, le="+Inf"}}', counter((10, n))),
            ]

        labels = {"job": self.jobs.worker, "queue": "celery"}
        return [
            case(
                "tasks wait just longer than allowed",
                step,
                waits(limit * (1 + NUDGE)),
                [firing("CeleryQueueWaitHigh", at, self.labels("CeleryQueueWaitHigh", **labels))],
            ),
            case(
                "tasks wait just less than allowed",
                step,
                waits(limit * (1 - NUDGE)),
                [firing("CeleryQueueWaitHigh", at, fires=False)],
            ),
        ]

    # --- service-level objectives: each burn-rate row just above and below its factor ------------
    def slo_series(self, objective, sli, error_ratio, n):
        per_step = 1000
        if sli == "success":
            base = f'{self.EXPORTER}, name="{objective.task or "process_task"}", queue_name="{objective.queue or "celery"}"'
            return [
                (f"celery_task_succeeded_total{{{base}}}", counter((per_step * (1 - error_ratio), n))),
                (f'celery_task_failed_total{{{base}, exception="Error"}}', counter((per_step * error_ratio, n))),
            ]
        base = f'{self.WORKER}, task="{objective.task or "process_task"}", queue="{objective.queue or "celery"}"'
        bound = num(getattr(objective, sli).seconds)
        name = f"celery_worker_task_{sli}_seconds"
        return [
            (f'{name}_bucket{{{base}, le="{bound}"}}', counter((per_step * (1 - error_ratio), n))),
            (f"{name}_count{{{base}}}", counter((per_step, n))),
        ]

    def slos(self):
        """Every window holds the same error ratio from the start, so a few steps suffice: the row's
        alert fires just above factor x budget and stays silent just below (other rows aside)."""
        step = self.step
        at = 10 * step
        n = self.samples(at) + 4
        out = []
        for objective, sli, ratio in slo.slis(self.cfg):
            if any(v and not re.fullmatch(v, v) for v in (objective.task, objective.queue)):
                continue  # a regex that does not match itself: no literal series to select
            for row in self.cfg.slos.alerts:
                budget = 1 - ratio
                where = {"slo": objective.name, "sli": sli, "long_window": row.long}
                labels = self.labels("CeleryErrorBudgetBurn", **where, short_window=row.short)
                labels["severity"] = row.severity
                above, below = (min(1.0, row.factor * budget * (1 + s * NUDGE)) for s in (1, -1))
                if above <= row.factor * budget:
                    continue  # a burn above 100 % cannot happen: nothing to test just above
                out += [
                    case(
                        f"SLO {objective.name} {sli}: a burn just above {row.factor:g}x over {row.long}",
                        step,
                        self.slo_series(objective, sli, above, n),
                        [firing("CeleryErrorBudgetBurn", at, labels, where=where)],
                    ),
                    case(
                        f"SLO {objective.name} {sli}: a burn just below {row.factor:g}x over {row.long}",
                        step,
                        self.slo_series(objective, sli, below, n),
                        [firing("CeleryErrorBudgetBurn", at, fires=False, where=where)],
                    ),
                ]
        return out

    # --- tasks waiting at a worker (Flower's prefetch time) ----------------------------------------
    def prefetch(self):
        t, step = self.t, self.step
        limit = t.prefetch_wait_max_seconds
        window = self.samples(self.s("prefetch_wait_window"))  # samples in a full window
        at = self.s("prefetch_wait_window") + self.s("prefetch_wait_for") + 4 * step
        n = self.samples(at) + 4
        # Flower's gauge per worker and task name, or per worker only (cardinality.flower_task_series).
        task = ', task="process_task"' if self.cfg.cardinality.flower_task_series else ""
        wait = ("flower_task_prefetch_time_seconds{" + self.FLOWER + ', worker="%s"' + task + "}").__mod__
        w1, w2 = "celery_worker-1@host-1", "celery_worker-2@host-2"
        labels = {"job": self.jobs.flower, "instance": "flower:5555"}
        if task:
            labels["task"] = "process_task"
        # One long wait in a full window: the average stays at half the limit.
        spike = f"0x{window} {limit * window / 2:g} 0x{n}"
        return [
            case(
                "tasks keep waiting at a worker just over the limit",
                step,
                [(wait(w1), gauge(limit * (1 + NUDGE), n)), (wait(w2), gauge(0, n))],
                [
                    firing(
                        "CeleryTaskPrefetchTimeHigh", at, self.labels("CeleryTaskPrefetchTimeHigh", worker=w1, **labels)
                    )
                ],
            ),
            case(
                "waits just under the limit, and one long wait that does not last",
                step,
                [(wait(w1), gauge(limit * (1 - NUDGE), n)), (wait(w2), spike)],
                [firing("CeleryTaskPrefetchTimeHigh", at, fires=False)],
            ),
        ]

    # --- the monitoring pipeline ----------------------------------------------------------------
    def events(self):
        t, step = self.t, self.step
        limit = t.events_backlog_max
        at = self.s("events_window") + self.s("events_for") + 4 * step
        n = self.samples(at) + 4
        queue = f'{RabbitMQ.QUEUE_READY}{{{self.QUEUES}, queue="celeryev.monitor"}}'
        labels = {
            "job": self.jobs.rabbitmq_queues,
            "instance": "rabbitmq:15692",
            "vhost": "/",
            "queue": "celeryev.monitor",
        }
        return [
            case(
                "an event queue above the limit and growing",
                step,
                [(queue, f"{limit + 1:g}+1x{n}")],
                [firing("CeleryEventsLagging", at, self.labels("CeleryEventsLagging", **labels))],
            ),
            case(
                "an event queue above the limit but draining, or growing below it",
                step,
                [
                    (queue, f"{limit * 2:g}-1x{n}"),
                    (queue.replace("celeryev.monitor", "celeryev.other"), f"0+1x{min(n, int(limit) - 1)}"),
                ],
                [firing("CeleryEventsLagging", at, fires=False)],
            ),
            *self.events_lost(),
            case(
                "the watchdog always fires",
                step,
                [],  # vector(1): no deployment label
                [firing("Watchdog", step, {k: v for k, v in self.labels("Watchdog").items() if k not in self.dep})],
            ),
        ]

    def events_lost(self):
        """Workers count their started tasks; the exporter misses just more (or less) than the
        allowed share of the task-started events, Flower none; and a loss on too few tasks."""
        t, step = self.t, self.step
        window, limit = self.s("events_lost_window"), t.events_lost_ratio_max
        at = window + self.s("events_lost_for") + 4 * step
        n = self.samples(at) + 4
        per_step = 2 * t.events_lost_min_tasks * step / window

        # The monitor that loses events: the exporter, or Flower when the Config has no exporter.
        lossy = "exporter" if self.cfg.sources.exporter else "flower"
        lossy_job = getattr(self.jobs, lossy)
        lossy_up = f"up{{{self.EXPORTER if lossy == 'exporter' else self.FLOWER}}}"

        # Flower counts per worker and task name, or per worker only (cardinality.flower_task_series).
        task = ', task="process_task"' if self.cfg.cardinality.flower_task_series else ""

        def pipeline(lost_share, started=per_step):
            kept = {m: started * (1 - lost_share) if m == lossy else started for m in ("exporter", "flower")}
            return [
                (f"celery_worker_tasks_started_total{{{self.WORKER}}}", counter((started, n))),
                (
                    f'celery_task_started_total{{{self.EXPORTER}, name="process_task", hostname="host-1"}}',
                    counter((kept["exporter"], n)),
                ),
                (
                    f'flower_events_total{{{self.FLOWER}, worker="celery_worker-1@host-1", type="task-started"{task}}}',
                    counter((kept["flower"], n)),
                ),
            ]

        few = t.events_lost_min_tasks * step / window / 2
        return [
            case(
                "the exporter counts just too few of the tasks the workers started",
                step,
                pipeline(limit * (1 + 5 * NUDGE)),
                [firing("CeleryEventsLost", at, self.labels("CeleryEventsLost", job=lossy_job))],
            ),
            case(
                "the exporter misses just less than allowed",
                step,
                pipeline(limit * (1 - 5 * NUDGE)),
                [firing("CeleryEventsLost", at, fires=False)],
            ),
            case(
                "a monitor misses half of too few tasks to judge",
                step,
                pipeline(0.5, started=few),
                [firing("CeleryEventsLost", at, fires=False)],
            ),
            # Workers that send no task events: the exporter is up and has no task series at all.
            case(
                "a monitor that is up has counted no task",
                step,
                [
                    (f"celery_worker_tasks_started_total{{{self.WORKER}}}", counter((per_step, n))),
                    (lossy_up, gauge(1, n)),
                ],
                [firing("CeleryEventsLost", at, self.labels("CeleryEventsLost", job=lossy_job))],
            ),
        ]


FILES = {
    "success_rate": "success",
    "runtime": "runtime",
    "queue": "queues",
    "worker_resources": "resources",
    "throughput": "throughput",
    "workers": "workers",
    "events": "events",
    "prefetch": "prefetch",
    "pool_recycling": "recycling",
    "queue_wait": "queue_wait",
    "slo": "slos",
}


def only_rendered(tests, rendered):
    """The cases with their checks of alerts the Config renders; cases left without checks go."""
    out = []
    for c in tests:
        checks = [chk for chk in c["promql_expr_test"] if chk["expr"].split('"')[1] in rendered]
        if checks:
            out.append({**c, "promql_expr_test": checks})
    return out


def build(cfg: Config):
    """{file stem: promtool test document} for the Config's rule file in the parent folder."""
    cases = Cases(cfg)
    group_order = [g["name"] for g in rules.build(cfg)["groups"]]
    docs = {}
    for stem, method in FILES.items():
        tests = only_rendered(getattr(cases, method)(), cases.rendered)
        if tests:
            # Rules are evaluated as often as the file's samples come (one step for all its cases).
            docs[stem] = {
                "rule_files": ["../celery.rules.yml"],
                "evaluation_interval": tests[0]["interval"],
                "group_eval_order": group_order,
                "tests": tests,
            }
    return docs


def render(doc, source="the bundle's configuration"):
    header = (
        f"# GENERATED by `python -m mixin` (mixin/alert_tests.py) from {source}: each alert just past\n"
        f"# its threshold (fires) and just short of it (stays silent). Do not edit by hand.\n"
    )
    return header + rules.dump(doc)
