"""Task alerts: the guide's success rate and runtime signals (celery-exporter), and tasks waiting
at a worker behind long ones (Flower's prefetch time). They read the recording rules of
mixin/rules.py (celery:...)."""

from mixin.alerts.alert import Alert, pct
from mixin.durations import seconds
from mixin.queries import num


def _volume(t):
    """(window, its seconds, minimum tasks) of the success-rate judgement."""
    return t.success_window, seconds(t.success_window), num(t.success_min_tasks)


def success_rate_low(cfg, q):
    if not cfg.sources.exporter:
        return None
    t = cfg.thresholds
    w, ws, min_tasks = _volume(t)
    ratio = pct(t.success_ratio_min)
    return Alert(
        name="CelerySuccessRateLow",
        expr=(
            f"celery:success:ratio < {num(t.success_ratio_min)}\nand on ({q.deployment})\n"
            f"celery:throughput:rate * {ws} >= {min_tasks}"
        ),
        for_=t.success_for,
        severity="critical",
        dashboard="tasks",
        summary=f"Celery task success rate is below {ratio}",
        description=(
            f"Only {{{{ $value | humanizePercentage }}}} of the tasks that finished in the last {w} "
            f"succeeded (threshold {ratio}, judged on at least {min_tasks} tasks)."
        ),
        when=(
            f"less than {ratio} of all tasks finished in {w} succeeded (at least {min_tasks} finished), "
            f"for {t.success_for}"
        ),
    )


def task_success_rate_low(cfg, q):
    if not cfg.sources.exporter:
        return None
    t = cfg.thresholds
    w, ws, min_tasks = _volume(t)
    ratio = pct(t.success_ratio_min)
    return Alert(
        name="CeleryTaskSuccessRateLow",
        expr=(
            f"celery:task_success:ratio < {num(t.success_ratio_min)}\nand\n"
            f"celery:task_finished:rate * {ws} >= {min_tasks}"
        ),
        for_=t.success_for,
        severity="warning",
        dashboard="tasks",
        flower_state="FAILURE",
        summary=f"Task {{{{ $labels.name }}}} succeeds less than {ratio} of the time",
        description=(
            f"{{{{ $value | humanizePercentage }}}} of the {{{{ $labels.name }}}} runs on queue "
            f"{{{{ $labels.queue_name }}}} that finished in the last {w} succeeded (threshold {ratio}, "
            f"judged on at least {min_tasks} runs)."
        ),
        when=(
            f"less than {ratio} of one task's runs finished in {w} succeeded (at least {min_tasks} "
            f"finished), for {t.success_for}"
        ),
    )


def runtime_rising(cfg, q):
    """p95 against its own earlier average, on enough runs, and above a floor (noise)."""
    if not cfg.sources.exporter:
        return None
    t = cfg.thresholds
    _, ws, min_tasks = _volume(t)
    factor, floor = num(t.runtime_p95_ratio_max), num(t.runtime_p95_min_seconds)
    baseline = f"{t.runtime_baseline_window}] offset {t.runtime_baseline_offset}"
    return Alert(
        name="CeleryTaskRuntimeRising",
        expr=(
            f"celery:task_runtime_seconds:p95\n"
            f"> {factor} * avg_over_time(celery:task_runtime_seconds:p95[{baseline})\n"
            f"and\ncelery:task_runtime_seconds:p95 > {floor}\n"
            f"and\ncelery:task_succeeded:rate * {ws} >= {min_tasks}"
        ),
        for_=t.runtime_for,
        severity="warning",
        dashboard="tasks",
        flower_state="SUCCESS",
        summary="Task {{ $labels.name }} runs slower than usual",
        description=(
            f"p95 runtime of {{{{ $labels.name }}}} on queue {{{{ $labels.queue_name }}}} is "
            f"{{{{ $value | humanizeDuration }}}}, more than {factor}x its average over the "
            f"{t.runtime_baseline_window} before the last {t.runtime_baseline_offset}."
        ),
        when=(
            f"a task's p95 runtime is above {factor}x its average p95 over {t.runtime_baseline_window} "
            f"ending {t.runtime_baseline_offset} ago, and above {floor} s, for {t.runtime_for}"
        ),
    )


def throughput_below_baseline(cfg, q):
    """Tasks per second against the same time a while earlier, when that had traffic."""
    if not cfg.sources.exporter:
        return None
    t = cfg.thresholds
    w, ws, min_tasks = _volume(t)
    offset, share = t.throughput_baseline_offset, pct(t.throughput_ratio_min)
    return Alert(
        name="CeleryThroughputBelowBaseline",
        expr=(
            f"celery:throughput:rate / celery:throughput:rate offset {offset} < {num(t.throughput_ratio_min)}\n"
            f"and on ({q.deployment})\ncelery:throughput:rate offset {offset} * {ws} >= {min_tasks}"
        ),
        for_=t.throughput_for,
        severity="info",
        dashboard="overview",
        summary="Celery throughput is far below its baseline",
        description=(
            f"Tasks finished per second are {{{{ $value | humanizePercentage }}}} of the same {w} "
            f"window {offset} earlier (threshold {share})."
        ),
        when=(
            f"tasks finished per second are below {share} of the same time {offset} earlier (when that "
            f"had at least {min_tasks} tasks in {w}), for {t.throughput_for}"
        ),
    )


def prefetch_time_high(cfg, q):
    """Tasks queued at a worker behind a long one (prefetch), invisible in the broker's queue depth.
    Flower's gauge is per worker and task name, or per worker only (cardinality.flower_task_series)."""
    if not cfg.sources.flower:
        return None
    t = cfg.thresholds
    limit = num(t.prefetch_wait_max_seconds)
    by_task = cfg.cardinality.flower_task_series
    tasks = "{{ $labels.task }} tasks" if by_task else "Tasks"
    return Alert(
        name="CeleryTaskPrefetchTimeHigh",
        expr=f"{q.prefetch_wait_avg(t.prefetch_wait_window)} > {limit}",
        for_=t.prefetch_wait_for,
        severity="warning",
        dashboard="tasks",
        summary=(
            "Task {{ $labels.task }} waits at worker {{ $labels.worker }} before it starts"
            if by_task
            else "Tasks wait at worker {{ $labels.worker }} before they start"
        ),
        description=(
            f"{tasks} waited on average {{{{ $value | humanizeDuration }}}} at "
            f"{{{{ $labels.worker }}}} between being received (prefetched) and started, over "
            f"{t.prefetch_wait_window} (threshold {limit}s): they are queued behind long tasks that "
            f"hold the worker's pool slots."
        ),
        when=(
            f"tasks {'of one name ' if by_task else ''}waited at one worker between received (prefetched) and "
            f"started more than {limit} s on average over {t.prefetch_wait_window}, for {t.prefetch_wait_for}"
        ),
    )


def queue_wait_high(cfg, q):
    """Tasks wait long between publish (or their ETA) and start, by the workers' own measure."""
    if not cfg.sources.worker_metrics:
        return None
    t = cfg.thresholds
    limit = num(t.queue_wait_p95_max_seconds)
    return Alert(
        name="CeleryQueueWaitHigh",
        expr=f"celery:queue_wait_seconds:p95 > {limit}",
        for_=t.queue_wait_for,
        severity="warning",
        dashboard="latency",
        summary="Tasks on queue {{ $labels.queue }} wait long before they start",
        description=(
            f"95% of the tasks that started from queue {{{{ $labels.queue }}}} in the last "
            f"{t.queue_wait_window} waited less than {{{{ $value | humanizeDuration }}}} between publish "
            f"and start, more than the {limit}s allowed: the workers do not keep up, or a consumer is "
            f"stuck behind long tasks."
        ),
        when=(
            f"the p95 time from publish (or ETA) to start of a queue's tasks over {t.queue_wait_window} is above "
            f"{limit} s, for {t.queue_wait_for}"
        ),
    )


ALERTS = (
    success_rate_low,
    task_success_rate_low,
    runtime_rising,
    throughput_below_baseline,
    prefetch_time_high,
    queue_wait_high,
)
