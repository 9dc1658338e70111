"""The mixin's configuration: one typed object that every rule, promtool case and dashboard is
rendered from. The bundle's own files are `Config()` (the defaults below) rendered; a user writes
a YAML file with only what differs (see docs/mixin.md) and renders it with
`python -m mixin render --config FILE --out DIR`. Nothing here is read as a module global at
render time: every function of the mixin takes the Config it renders.

Knob names say their kind, and the profiles (mixin/profiles.py) rely on it:
  *_for     how long a condition must hold before an alert fires;
  *_window  a range-vector window (rate, deriv, avg_over_time, ...);
  *_offset  how far back a baseline looks;
  anything else is a level (a ratio, a count, bytes per second).
"""

import difflib
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from mixin.durations import seconds
from native.ports import BASE_PORTS as PORTS
from worker.settings import DEFAULT_TASK_LATENCY_BUCKETS


def _duration(value: str) -> str:
    seconds(value)  # refuses anything that is not a Prometheus duration, naming the value
    return value


Duration = Annotated[str, AfterValidator(_duration)]
Ratio = Annotated[float, Field(gt=0, le=1)]
Level = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=1)]
LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
Severity = Literal["critical", "warning", "info", "none"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Jobs(Section):
    """Prometheus job names of each source (prometheus/prometheus.yml uses these; a test checks)."""

    app: str = "app"
    worker: str = "celery_worker"
    flower: str = "flower"
    exporter: str = "celery_exporter"
    rabbitmq: str = "rabbitmq"
    rabbitmq_queues: str = "rabbitmq_queues"
    redis_broker: str = "redis_broker"
    alertmanager: str = "alertmanager"
    prometheus: str = "prometheus"


class Sources(Section):
    """What the user's Prometheus scrapes. Rules and panels are rendered only for what these feed,
    so a source the user does not run never pages."""

    flower: bool = True
    exporter: bool = True
    # Each worker's own /metrics (worker/metrics.py): CPU, memory, pool, tasks started.
    worker_metrics: bool = True
    app: bool = True
    # Broker exporters scraped for queue depth and consumers: rabbitmq (rabbitmq_prometheus, jobs
    # rabbitmq and rabbitmq_queues), redis (redis_exporter, job redis_broker). With both, one rule
    # file serves either broker (each expression is joined with `or`). Empty: the queue alerts read
    # the celery-exporter's own celery_queue_length and celery_active_consumer_count.
    brokers: tuple[Literal["rabbitmq", "redis"], ...] = ("rabbitmq", "redis")


class Labels(Section):
    """Labels that tell deployments apart in one Prometheus (absent natively and under compose,
    where they match everything)."""

    cluster: LabelName = "cluster"
    namespace: LabelName = "namespace"
    # More labels kept by every aggregation (e.g. an environment or a region label).
    extra: tuple[LabelName, ...] = ()
    # A label that every target of one Celery deployment carries, whichever namespace it runs in
    # (the Helm chart stamps one). Joins across components (workers against their monitors, queues
    # against their autoscaler) then use it instead of the namespace.
    deployment: LabelName | None = None

    @property
    def scope(self):
        """Labels every aggregation keeps."""
        labels = [self.cluster, self.namespace, *self.extra]
        return labels + ([self.deployment] if self.deployment and self.deployment not in labels else [])

    @property
    def join(self):
        """Labels that match one deployment's components to each other."""
        if self.deployment:
            return [self.cluster, *self.extra, self.deployment]
        return [self.cluster, self.namespace, *self.extra]


class Urls(Section):
    """Links the alerts and dashboards carry. An empty URL leaves that link out. Defaults: the
    bundle's stack on this machine."""

    grafana: str = f"http://localhost:{PORTS['grafana']}"
    flower: str = f"http://localhost:{PORTS['flower']}"
    # `{alert}` is replaced by the alert's name.
    runbook: str = f"http://localhost:{PORTS['app']}/runbooks/{{alert}}"
    rabbitmq_management: str = f"http://localhost:{PORTS['rabbitmq_management']}"

    @model_validator(mode="after")
    def _runbook_pattern(self):
        if self.runbook and "{alert}" not in self.runbook:
            raise ValueError(f"runbook: {self.runbook!r} has no {{alert}} placeholder")
        return self


class Dashboards(Section):
    datasource_uid: str = "prometheus"
    uids: dict[Literal["overview", "tasks", "workers", "latency", "slo", "broker", "redis_broker"], str] = Field(
        default_factory=lambda: {
            "overview": "celery-overview",
            "tasks": "celery-tasks",
            "workers": "celery-workers",
            "latency": "celery-latency",
            "slo": "celery-slo",
            "broker": "rabbitmq-broker",
            "redis_broker": "redis-broker",
        }
    )
    tags: tuple[str, ...] = ("celery",)
    refresh: str = "10s"


class Thresholds(Section):
    """The guide's production thresholds and the windows they are judged over."""

    # Task success rate must stay above 95 %, judged on at least success_min_tasks finished tasks.
    success_ratio_min: Ratio = 0.95
    success_min_tasks: Count = 20
    success_window: Duration = "5m"
    success_for: Duration = "2m"
    # Queue length near 0: more than this many ready messages, sustained, is a backlog.
    queue_backlog_max: Level = 10
    queue_backlog_for: Duration = "5m"
    # Worker CPU must stay below 80 % of the cores the worker may use.
    worker_cpu_ratio_max: Ratio = 0.80
    worker_cpu_for: Duration = "5m"
    # Memory must be stable: RSS growth faster than this (bytes per second), sustained, alerts.
    worker_memory_growth_bytes_per_s: Level = 1024 * 1024 / 60  # 1 MiB per minute
    worker_memory_for: Duration = "10m"
    # Runtime must not rise: p95 above this multiple of its own baseline alerts.
    runtime_p95_ratio_max: Level = 2.0
    # Throughput against a baseline: below this fraction of the same window a day earlier.
    throughput_ratio_min: Ratio = 0.5
    throughput_baseline_offset: Duration = "1d"
    # Queue growing steadily: depth above queue_backlog_max and rising this fast over the window.
    queue_growth_window: Duration = "10m"
    queue_growth_min_per_minute: Level = 3
    queue_growth_for: Duration = "5m"
    # Messages ready but no consumer on the queue.
    queue_no_consumer_for: Duration = "1m"
    # Rate window of worker CPU utilisation.
    worker_cpu_window: Duration = "2m"
    # Window of the memory trend (deriv). Shorter than worker_memory_for on purpose: a one-off step
    # (a cache filling once) leaves the window before the alert can fire; only steady growth stays.
    worker_memory_window: Duration = "5m"
    # Runtime baseline: average p95 over this window, ending this long ago (so a rise does not
    # dilute its own baseline). Rises of p95 below runtime_p95_min_seconds are noise, not alerts.
    runtime_baseline_window: Duration = "1h"
    runtime_baseline_offset: Duration = "15m"
    runtime_p95_min_seconds: Level = 0.25
    runtime_for: Duration = "5m"
    throughput_for: Duration = "15m"
    # Workers: offline per Flower (full names), none online at all, no worker alive on a host.
    worker_down_for: Duration = "1m"
    # A worker whose Flower series vanished (purged after it died) alerts for this long at most.
    worker_vanished_window: Duration = "15m"
    # A scrape target down. Shorter than worker_down_for so that its inhibitions arrive first.
    target_down_for: Duration = "30s"
    # The monitoring pipeline lags: a monitor's event queue holds more than this many events and
    # keeps growing. Events wait at most EVENT_QUEUE_TTL (60 s) before RabbitMQ drops them.
    events_backlog_max: Level = 1000
    events_window: Duration = "5m"
    events_for: Duration = "2m"
    # Events lost on the way to a monitor: Flower or the exporter counted fewer task-started events
    # than the workers say they started, by more than this share. The window is long so that a
    # monitor merely lagging does not look like a loss; fewer than events_lost_min_tasks started in
    # the window are not judged.
    events_lost_ratio_max: Ratio = 0.02
    events_lost_min_tasks: Count = 100
    events_lost_window: Duration = "30m"
    events_lost_for: Duration = "5m"
    # Tasks wait at a worker between received (prefetched) and started (Flower's prefetch time):
    # the average over the window above this many seconds, sustained, alerts (as Flower's example
    # alert TaskPrefetchTimeTooHigh: 1 s over 15m, for 5m).
    prefetch_wait_max_seconds: Level = 1
    prefetch_wait_window: Duration = "15m"
    prefetch_wait_for: Duration = "5m"
    # Pool processes recycled at worker_max_memory_per_child (or _tasks_per_child): each process of
    # a worker replaced more than this many times within the window, sustained, is a fast leak that
    # the containment hides from CeleryWorkerMemoryGrowing (every replacement resets the trend).
    pool_recycling_per_process_max: Level = 1
    pool_recycling_window: Duration = "30m"
    pool_recycling_for: Duration = "5m"
    # Tasks wait too long between publish (or their ETA) and start on a worker (the workers' own
    # histogram): the p95 per queue over the window above this many seconds, sustained.
    queue_wait_p95_max_seconds: Level = 60
    queue_wait_window: Duration = "5m"
    queue_wait_for: Duration = "5m"

    @model_validator(mode="after")
    def _baseline_before_rise(self):
        if seconds(self.runtime_baseline_offset) < seconds(self.runtime_for):
            raise ValueError(
                f"runtime_baseline_offset ({self.runtime_baseline_offset}) must be at least "
                f"runtime_for ({self.runtime_for}), or a rise dilutes its own baseline"
            )
        return self

    def knobs(self):
        """{knob: value} in the order they are declared."""
        return {name: getattr(self, name) for name in type(self).model_fields}


def kind(knob):
    """'_for', '_window', '_offset' or None (a level), from the knob's name."""
    return next((k for k in ("_for", "_window", "_offset") if knob.endswith(k)), None)


class AlertSettings(Section):
    enabled: bool = True
    severity: Severity | None = None  # None: the alert's own


class Autoscaling(Section):
    """Workers autoscaled by KEDA: a backlog is how more workers get started, and a scale-down
    stops workers on purpose (mixin/alerts/ reads this)."""

    keda: bool = False
    # The HorizontalPodAutoscalers KEDA made for the workers (kube-state-metrics' label). With
    # labels.deployment set, that label's value is `<HPA's namespace>/<first group>`.
    hpa: str = "keda-hpa-(.+)-workers"


class Latency(Section):
    """The bounds (seconds) of the workers' latency histograms: queue wait, prefetch wait, runtime.
    They must match TASK_LATENCY_BUCKETS on the workers (the default is the workers' default)."""

    buckets: tuple[Annotated[float, Field(gt=0)], ...] = DEFAULT_TASK_LATENCY_BUCKETS

    @model_validator(mode="after")
    def _increasing(self):
        if any(b <= a for a, b in zip(self.buckets, self.buckets[1:], strict=False)):
            raise ValueError(f"buckets: {list(self.buckets)} must increase")
        return self


class Cardinality(Section):
    """Switches that bound the series each worker adds (docs/cardinality.md: the budget per source,
    the formula for a fleet, the figures measured at 1,000 workers). The defaults hold the budget at
    a thousand workers; the per-task views they turn off are for small fleets."""

    # Flower's series per task name on each worker: flower_events_total, flower_task_runtime_seconds,
    # flower_task_prefetch_time_seconds and flower_worker_prefetched_tasks by worker x task (up to
    # workers x task names series each). false: the bundle's Flower exposes them per worker only
    # (worker/flower_metrics.py), and Prometheus drops any Flower series that still has a task label
    # at scrape (mixin/prometheus.py), so a Flower without the bundle's metrics cannot break the
    # budget. true: Flower as it comes (PER_TASK_FLOWER_METRICS=1 on the bundle's Flower).
    flower_task_series: bool = False
    # The workers' latency histograms (queue wait, prefetch wait, runtime) per task name and queue
    # (true), or per queue only (false: the workers run with WORKER_LATENCY_METRICS=per_queue). With
    # false the panels by task are left out and an SLO objective that selects tasks is refused.
    worker_latency_by_task: bool = True
    # How often the rules that rate every bucket of every task's runtime histogram (the runtime p95
    # of CeleryTaskRuntimeRising, the Overview's runtime per queue) are evaluated: their cost grows
    # with task names x queues x buckets, and a 5-minute p95 need not move every 5 s. Never more often
    # than evaluation_interval.
    runtime_evaluation_interval: Duration = "15s"


class LatencyObjective(Section):
    """`ratio` of the tasks take less than `seconds` (a bucket bound of latency.buckets)."""

    seconds: Annotated[float, Field(gt=0)]
    ratio: Ratio


SLO_NAME = r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$"


class Objective(Section):
    """A service-level objective for the tasks one name and/or queue selects (regexes, as
    Prometheus matches them; none: all tasks), each SLI optional."""

    name: Annotated[str, Field(pattern=SLO_NAME)]
    task: str | None = None
    queue: str | None = None
    success_ratio: Ratio | None = None
    queue_wait: LatencyObjective | None = None
    runtime: LatencyObjective | None = None

    def slis(self):
        """{sli kind: objective ratio} of the SLIs this objective declares."""
        out = {}
        if self.success_ratio is not None:
            out["success"] = self.success_ratio
        for kind_ in ("queue_wait", "runtime"):
            if getattr(self, kind_) is not None:
                out[kind_] = getattr(self, kind_).ratio
        return out


class BurnAlert(Section):
    """A multi-window burn-rate alert: both windows (names of slo.windows) burn faster than factor."""

    severity: Severity
    long: str
    short: str
    factor: Annotated[float, Field(gt=0)]


class SLOs(Section):
    """Objectives and their multi-window, multi-burn-rate alerts (the SRE workbook's table)."""

    period: Duration = "30d"
    # How often the longer windows' ratios are recorded (an hour's window need not move every 5 s).
    evaluation_interval: Duration = "1m"
    objectives: tuple[Objective, ...] = (
        Objective(
            name="all-tasks",
            success_ratio=0.99,
            queue_wait=LatencyObjective(seconds=30, ratio=0.95),
            runtime=LatencyObjective(seconds=60, ratio=0.95),
        ),
    )
    # Window name -> duration. Names stay in the recording rules' names (celery:slo_errors:ratio_rate5m)
    # when a profile shortens the durations, so dashboards and alerts find them under any profile.
    windows: dict[str, Duration] = Field(
        default_factory=lambda: {"5m": "5m", "30m": "30m", "1h": "1h", "2h": "2h", "6h": "6h", "1d": "1d", "3d": "3d"}
    )
    alerts: tuple[BurnAlert, ...] = (
        BurnAlert(severity="critical", long="1h", short="5m", factor=14.4),
        BurnAlert(severity="critical", long="6h", short="30m", factor=6),
        BurnAlert(severity="warning", long="1d", short="2h", factor=3),
        BurnAlert(severity="warning", long="3d", short="6h", factor=1),
    )

    @model_validator(mode="after")
    def _consistent(self):
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives: names must be unique, got {names}")
        for a in self.alerts:
            for w in (a.long, a.short):
                if w not in self.windows:
                    raise ValueError(f"alerts: window {w!r} is not one of windows ({', '.join(self.windows)})")
        return self


class Config(Section):
    jobs: Jobs = Jobs()
    sources: Sources = Sources()
    labels: Labels = Labels()
    urls: Urls = Urls()
    dashboards: Dashboards = Dashboards()
    thresholds: Thresholds = Thresholds()
    # Per alert: {CeleryWorkerCpuHigh: {enabled: false}, CeleryQueueBacklog: {severity: critical}}.
    alerts: dict[str, AlertSettings] = Field(default_factory=dict)
    # Added to every alert (e.g. team: payments), as kube-prometheus-stack's additionalRuleLabels.
    rule_labels: dict[LabelName, str] = Field(default_factory=dict)
    scrape_interval: Duration = "5s"
    evaluation_interval: Duration = "5s"
    autoscaling: Autoscaling = Autoscaling()
    latency: Latency = Latency()
    slos: SLOs = SLOs()
    cardinality: Cardinality = Cardinality()

    @model_validator(mode="after")
    def _slo_tasks_need_latency_by_task(self):
        if self.cardinality.worker_latency_by_task:
            return self
        for o in self.slos.objectives:
            if o.task is not None and (o.queue_wait is not None or o.runtime is not None):
                raise ValueError(
                    f"slos: objective {o.name!r} selects task {o.task!r} for a latency SLI, but "
                    "cardinality.worker_latency_by_task is false: the workers' histograms have no task label"
                )
        return self

    @model_validator(mode="after")
    def _slo_bounds_are_buckets(self):
        for o in self.slos.objectives:
            for kind_ in ("queue_wait", "runtime"):
                target = getattr(o, kind_)
                if target is not None and target.seconds not in self.latency.buckets:
                    raise ValueError(
                        f"slos: objective {o.name!r} {kind_}.seconds {target.seconds:g} is not a bucket "
                        f"bound of latency.buckets ({', '.join(f'{b:g}' for b in self.latency.buckets)})"
                    )
        return self

    def alert(self, name):
        return self.alerts.get(name, AlertSettings())


# --- Reading a user's file -------------------------------------------------------------------------


class ConfigError(ValueError):
    """A configuration that cannot be rendered; the message is one line per problem."""


def _where(loc):
    return ".".join(str(part) for part in loc if not str(part).startswith("function-"))


def _model_at(loc):
    """The model class the last key of loc belongs to, for suggesting a close key."""
    model = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif field is not None and str(part) == "alerts":
            return AlertSettings
        elif not isinstance(part, str) or field is None:
            continue
    return model


def explain(error: ValidationError, source="configuration"):
    """pydantic's errors as lines: `FILE: key.path: value: what is wrong`."""
    lines = []
    for e in error.errors():
        where = _where(e["loc"])
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            close = difflib.get_close_matches(key, list(_model_at(e["loc"]).model_fields), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            lines.append(f"{source}: {where}: unknown key{hint}")
            continue
        message = e["msg"].removeprefix("Value error, ")
        value = e.get("input")
        shown = f" {value!r}:" if value is not None and not isinstance(value, dict) else ""
        lines.append(f"{source}: {where + ':' if where else ''}{shown} {message}".replace("  ", " "))
    return "\n".join(lines)


def merge(base: dict, overlay: dict) -> dict:
    """overlay's keys over base's, recursively for nested mappings."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build(overrides=None, base=None, source="configuration"):
    """A Config from `base` (default: the bundle's) with `overrides` (nested dicts) laid over it."""
    data = (base or Config()).model_dump(exclude_defaults=True)
    try:
        return Config.model_validate(merge(data, overrides or {}))
    except ValidationError as exc:
        raise ConfigError(explain(exc, source)) from None


def load(path):
    """The Config a user's YAML file describes (only the keys that differ from the bundle's)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return build(data, source=str(path))
