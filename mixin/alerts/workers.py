"""Worker alerts: the guide's CPU and memory signals (each worker's own /metrics), pool processes
recycled too often, and workers gone (Flower's view by full name, the celery-exporter's by host).

With workers autoscaled by KEDA (cfg.autoscaling.keda) a scale-down stops workers on purpose: only
a worker that vanished while online (killed) is down, and a host whose worker Flower saw shut down
cleanly is not.
"""

from mixin.alerts.alert import Alert, pct
from mixin.queries import num


def cpu_high(cfg, q):
    if not cfg.sources.worker_metrics:
        return None
    t = cfg.thresholds
    limit = pct(t.worker_cpu_ratio_max)
    return Alert(
        name="CeleryWorkerCpuHigh",
        expr=f"celery:worker_cpu_utilisation:ratio > {num(t.worker_cpu_ratio_max)}",
        for_=t.worker_cpu_for,
        severity="warning",
        dashboard="workers",
        summary=f"Worker {{{{ $labels.worker }}}} uses more than {limit} of its CPU limit",
        description=(
            f"{{{{ $labels.worker }}}} uses {{{{ $value | humanizePercentage }}}} of the cores it may use "
            f"(averaged over {t.worker_cpu_window}, threshold {limit})."
        ),
        when=(
            f"a worker's process tree uses more than {limit} of the cores it may use (averaged over "
            f"{t.worker_cpu_window}) for {t.worker_cpu_for}"
        ),
    )


def memory_growing(cfg, q):
    if not cfg.sources.worker_metrics:
        return None
    t = cfg.thresholds
    growth = t.worker_memory_growth_bytes_per_s
    text = f"{growth * 60 / 2**20:g} MiB/min"
    return Alert(
        name="CeleryWorkerMemoryGrowing",
        expr=f"celery:worker_memory_rss_bytes:deriv > {num(growth)}",
        for_=t.worker_memory_for,
        severity="warning",
        dashboard="workers",
        summary="Worker {{ $labels.worker }} memory keeps growing",
        description=(
            f"Resident memory of {{{{ $labels.worker }}}} grows by {{{{ $value | humanize1024 }}}}B/s "
            f"(threshold {text}) for {t.worker_memory_for}: a leak or an unbounded cache."
        ),
        when=(
            f"a worker's resident memory grows faster than {text} (trend over {t.worker_memory_window}) "
            f"for {t.worker_memory_for}"
        ),
    )


def pool_recycling(cfg, q):
    if not cfg.sources.worker_metrics:
        return None
    t = cfg.thresholds
    limit = num(t.pool_recycling_per_process_max)
    return Alert(
        name="CeleryWorkerPoolRecycling",
        expr=(f"{q.pool_replacements(t.pool_recycling_window)}\n> on ({q.worker}) {q.pool_processes()} * {limit}"),
        for_=t.pool_recycling_for,
        severity="warning",
        dashboard="workers",
        summary="Worker {{ $labels.worker }} keeps recycling its pool processes",
        description=(
            f"{{{{ $value | humanize }}}} pool processes of {{{{ $labels.worker }}}} were replaced at "
            f"their memory or task limit in the last {t.pool_recycling_window}, more than {limit} per "
            f"process: tasks leak memory faster than containment can hide for long."
        ),
        when=(
            f"a worker's pool processes were each recycled more than {limit} time(s) at "
            f"worker_max_memory_per_child or _tasks_per_child within {t.pool_recycling_window}, "
            f"for {t.pool_recycling_for}"
        ),
    )


def worker_down(cfg, q):
    """Flower names workers in full; a dead worker's series is purged by Flower, so "vanished
    within the window" counts as offline too."""
    if not cfg.sources.flower:
        return None
    t = cfg.thresholds
    online, vanished, down_for = q.flower_worker_online(), t.worker_vanished_window, t.worker_down_for
    gone = f"last_over_time({online}[{vanished}])"
    by_worker = ", ".join([*cfg.labels.scope, "worker"])
    if cfg.autoscaling.keda:
        return Alert(
            name="CeleryWorkerDown",
            expr=f"{gone} == 1\nunless on ({by_worker}) {online}",
            for_=down_for,
            severity="warning",
            dashboard="workers",
            summary="Celery worker {{ $labels.worker }} is offline",
            description=(
                f"Flower dropped {{{{ $labels.worker }}}} while it was online (killed, no clean "
                f"shutdown), for {down_for}."
            ),
            when=(
                f"a worker's series vanished while online (killed, not a clean shutdown) within {vanished}, "
                f"for {down_for}"
            ),
        )
    return Alert(
        name="CeleryWorkerDown",
        expr=f"{online} == 0\nor\n({gone}\nunless on ({by_worker}) {online})",
        for_=down_for,
        severity="warning",
        dashboard="workers",
        summary="Celery worker {{ $labels.worker }} is offline",
        description=(
            f"Flower reports {{{{ $labels.worker }}}} offline, or dropped it after it stopped reporting, "
            f"for {down_for} (last value {{{{ $value }}}}: 0 = reported offline, 1 = vanished while "
            f"online, e.g. killed)."
        ),
        when=f"Flower reports a worker offline, or its series vanished within {vanished}, for {down_for}",
    )


def host_down(cfg, q):
    if not cfg.sources.exporter:
        return None
    t = cfg.thresholds
    expr = f"{q.exporter_worker_up()} == 0"
    when = f"the celery-exporter sees no live worker on a host for {t.worker_down_for}"
    if cfg.autoscaling.keda and cfg.sources.flower:
        # The exporter reports 0 for a host until it purges it, however its worker stopped.
        clean = (
            f"label_replace(last_over_time({q.flower_worker_online()}[{t.worker_vanished_window}]) == 0, "
            f'"hostname", "$1", "worker", ".+@(.+)")'
        )
        expr = f"{expr}\nunless on ({q.join}, hostname)\n{clean}"
        when = f"{when}, unless Flower saw that host's worker shut down cleanly"
    return Alert(
        name="CeleryWorkerHostDown",
        expr=expr,
        when=when,
        for_=t.worker_down_for,
        severity="warning",
        dashboard="workers",
        summary="No Celery worker alive on host {{ $labels.hostname }}",
        description=(
            f"celery-exporter has had no heartbeat from any worker on {{{{ $labels.hostname }}}} "
            f"(celery_worker_up = {{{{ $value }}}}) for {t.worker_down_for}."
        ),
    )


def no_worker_terms(cfg, q):
    """One term per source that can tell "no worker online", each keeping the deployment's labels
    and the source's job. A source that is up and sees no worker at all (every worker gone, its
    series purged) counts as 0 online; nothing is inferred from a source the Config does not have."""
    terms = []
    up = "up{%s} == 1"
    if cfg.sources.flower:
        online = q.flower_worker_online()
        terms += [
            f"sum by ({q.deployment}) ({online}) == 0",
            f"count by ({q.deployment}) ({up % q.selectors['flower']}) * 0\nunless on ({q.deployment}) {online}",
        ]
    if cfg.sources.exporter:
        alive = f"{q.exporter_worker_up()} == 1"
        terms.append(
            f"count by ({q.deployment}) ({up % q.selectors['exporter']}) * 0\nunless on ({q.deployment}) ({alive})"
        )
    if cfg.sources.worker_metrics:
        terms.append(f"sum by ({q.deployment}) ({q.worker_target_up()}) == 0")
        monitors = " or ".join(f"up{q.sel(m)}" for m in q.monitors())
        if monitors:
            # Worker targets gone altogether (pods deleted) while the deployment's monitors run.
            terms.append(
                f"label_replace(count by ({q.scope_join}) (({monitors}) == 1) * 0, "
                f'"job", "{cfg.jobs.worker}", "", "")\nunless on ({q.join}) {q.worker_target_up()}'
            )
    return terms


def no_worker_online(cfg, q):
    terms = no_worker_terms(cfg, q)
    if not terms:
        return None
    down_for = cfg.thresholds.worker_down_for
    return Alert(
        name="CeleryNoWorkerOnline",
        expr="\nor\n".join(f"({term})" if "\n" in term else term for term in terms),
        for_=down_for,
        severity="critical",
        dashboard="workers",
        summary="No Celery worker is online",
        description=(
            f"According to {{{{ $labels.job }}}}, {{{{ $value }}}} workers have been online for "
            f"{down_for}: no task is processed."
        ),
        when=f"Flower, the celery-exporter or the workers' own targets show no worker online for {down_for}",
    )


ALERTS = (cpu_high, memory_growing, pool_recycling, worker_down, host_down, no_worker_online)
