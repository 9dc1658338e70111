"""Section: late acks with worker_prefetch_multiplier 1, 2, 4 (events off, no monitors), and the
per-queue recipe (short tasks on a prefetch-4 worker, long tasks on prefetch-1 workers, task routes).

- Trivial and 10 ms tasks: one worker per setting, streamed as in the throughput section: tasks/s
  and CPU per task.
- Long tasks (10 s sleeps) on 2 workers x 2 processes, twice per setting: *backlog*, the tasks
  already queued when both workers start (a deploy, a restart, workers scaled up onto a backlog),
  and *burst*, the same workers idle when all the tasks arrive at once (the guide's scenario 2).
  From the workers' timeline (bench/timeline.py): makespan against the ideal, tasks per worker,
  and process-seconds a worker's process sat idle while another worker held prefetched tasks.
"""

import json
from dataclasses import replace

from bench import measure, throughput, timeline
from bench.probes import wait_until
from bench.configs import Config, WorkerSpec
from bench.publisher import Publisher
from bench.state import BenchError, nodename

LONG_WORKERS = 2
LONG_CONCURRENCY = 2
SHORT_QUEUE, LONG_QUEUE = "short", "long"
# The recipe: every short task on its own queue and worker, long ones on theirs.
ROUTES = {
    "bench.add": {"queue": SHORT_QUEUE},
    "bench.cpu10": {"queue": SHORT_QUEUE},
    "bench.sleep": {"queue": LONG_QUEUE},
}


def setting(n):
    return Config(
        f"prefetch{n}",
        conf=(("worker_prefetch_multiplier", n),),
        baseline=f"prefetch{n}",
        label=f"late acks, worker_prefetch_multiplier={n} (events off, no monitors)",
    )


def long_workers(n, queues="", first=1):
    return tuple(
        WorkerSpec(index=first + i, queues=queues, prefetch=n, concurrency=LONG_CONCURRENCY)
        for i in range(LONG_WORKERS)
    )


RECIPE = Config(
    "per_queue",
    conf=(("task_routes", ROUTES),),
    baseline="per_queue",
    label=f"per-queue recipe: queue {SHORT_QUEUE!r} on a prefetch-4 worker, {LONG_QUEUE!r} on "
    f"{LONG_WORKERS} prefetch-1 workers (task routes)",
    workers=(WorkerSpec(index=1, queues=SHORT_QUEUE, prefetch=4), *long_workers(1, LONG_QUEUE, first=2)),
)


def run(bench, settings, kinds, sizes, rounds, long_tasks, long_seconds, say):
    configs = [setting(n) for n in settings] + [RECIPE]
    runs = []
    for r in range(1, rounds + 1):
        for config in configs:
            runs += short_runs(bench, config, kinds, sizes, r, say)
    long = {c.name: long_scenarios(bench, long_config(c), long_tasks, long_seconds, say) for c in configs}
    return {
        "settings": list(settings),
        "labels": {c.name: c.label for c in configs},
        "routes": ROUTES,
        "rounds": rounds,
        "sizes": sizes,
        "long": {
            "tasks": long_tasks,
            "seconds": long_seconds,
            "workers": LONG_WORKERS,
            "concurrency": LONG_CONCURRENCY,
        },
        "short": {c.name: {kind: short_figures(runs, c.name, kind) for kind in kinds} for c in configs},
        "long_tasks": long,
        "runs": runs,
    }


def long_config(config):
    """The configuration's long-task workers: the recipe's two on queue `long` (its short-task
    worker would take none), otherwise two workers with the setting's prefetch."""
    if config is RECIPE:
        return replace(config, workers=RECIPE.workers[1:])
    return replace(config, workers=long_workers(dict(config.conf)["worker_prefetch_multiplier"]))


def short_figures(runs, name, kind):
    mine = [x for x in runs if x["config"] == name and x["kind"] == kind]
    return {
        "rate": measure.spread([x["rate"] for x in mine]),
        "cpu_ms_per_task": measure.spread([throughput.total_ms(x) for x in mine]),
    }


def short_runs(bench, config, kinds, sizes, r, say):
    """Trivial and 10 ms streams on one fresh start of the configuration (the recipe's: on its short worker)."""
    say(f"prefetch round {r}: {config.name}, {' and '.join(kinds)} tasks")
    out = []
    try:
        bench.up(config)
        for kind in kinds:
            out.append({**throughput.stream(bench, config, kind, sizes[kind], say), "round": r})
    except (BenchError, OSError) as exc:  # one stuck run must not lose the others: it is left out
        say(f"  {config.name} round {r}: left out: {exc!r}")
    finally:
        bench.down()
    return out


def long_scenarios(bench, config, n, seconds, say):
    """The backlog, then the burst, on the same workers; each analysed from the workers' timeline."""
    concurrency = {nodename(s.index): s.concurrency for s in config.workers}
    say(f"prefetch: {config.name}, {n} tasks of {seconds:g} s on {len(config.workers)} workers: backlog, then burst")
    out = {}
    try:
        bench.up(config, timeline=True, before_workers=lambda: publish(bench, n, seconds))
        wait_finished(bench, n, 0.0, timeout=n * seconds + 120)
        out["backlog"] = timeline.analyze(timeline.read(bench.timeline), concurrency, seconds)
        since = publish(bench, n, seconds)
        wait_finished(bench, n, since, timeout=n * seconds + 120)
        out["burst"] = timeline.analyze(timeline.read(bench.timeline), concurrency, seconds, since=since)
    except (BenchError, OSError) as exc:
        out["error"] = repr(exc)
        say(f"  {config.name}: left out: {exc!r}")
    finally:
        bench.down()
    for scenario in ("backlog", "burst"):
        if scenario in out:
            a = out[scenario]
            say(
                f"  {scenario:<8} makespan {a['makespan_s']:.1f} s (ideal {a['ideal_s']:.0f} s), tasks per worker "
                f"{json.dumps(a['per_worker'])}, idle while another held tasks {a['idle_while_held_s']:.1f} s, "
                f"finished {a['finished']}/{a['tasks']}, redelivered {a['redelivered']}"
            )
    return out


def wait_finished(bench, n, since, timeout):
    """Until n distinct tasks first received since `since` finished (a redelivered task counts once)."""

    def finished():
        tasks = timeline.tasks_of(timeline.read(bench.timeline), since)
        return sum(1 for x in tasks.values() if x["finished"] is not None) >= n

    wait_until(finished, timeout, f"{n} long tasks to finish", interval=0.5)


def publish(bench, n, seconds):
    """n sleep tasks published at once; returns the time just before the first."""
    pub = Publisher(bench, "--kind", "sleep", "--seconds", seconds, "--count", n, "--wait-go")
    t0 = pub.go()
    pub.result(60)
    return t0
