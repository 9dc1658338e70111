"""What the workers' timeline says about long tasks: how long they took against the ideal, and whether
a worker process sat idle while another worker held prefetched tasks it had not started.

The records are the lines bench/tasks.py appends under BENCH_TIMELINE: {"event": "ready", "worker"},
{"event": "received" | "started", "worker", "id"}, {"event": "finished", "id"}, each with "t"
(wall clock, one host). A task is *held* by a worker from received (prefetched) + GRACE_S to started; a worker
has an *idle process* while fewer of its tasks run than its pool has processes.
"""

import json
import math

# A prefetched task counts as held only after this long: a free process takes a task it was just
# given within a fraction of a second (its dispatch), which is no unfairness.
GRACE_S = 0.5
# Idle process-seconds while another worker held tasks, as a share of one task's duration, above
# which the spread was unfair.
UNFAIR_SHARE = 0.1


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def tasks_of(records, since=0.0):
    """{task id: {worker, received, started, finished, deliveries}} of the tasks first received at
    `since` or later. A task delivered again (its worker lost it) keeps its first receipt and its
    last start and finish."""
    first, deliveries = {}, {}
    for r in records:
        if r["event"] == "received":
            first.setdefault(r["id"], r)
            deliveries[r["id"]] = deliveries.get(r["id"], 0) + 1
    tasks = {
        i: {"worker": r["worker"], "received": r["t"], "started": None, "finished": None, "deliveries": deliveries[i]}
        for i, r in first.items()
        if r["t"] >= since
    }
    for r in records:
        task = tasks.get(r.get("id"))
        if task is not None and r["event"] in ("started", "finished"):
            task[r["event"]] = r["t"]
            if r["event"] == "started":
                task["worker"] = r["worker"]
    return tasks


def _state(tasks, worker, t):
    running = sum(1 for x in tasks if x["worker"] == worker and x["started"] <= t < x["finished"])
    held = sum(1 for x in tasks if x["worker"] == worker and x["received"] + GRACE_S <= t < x["started"])
    return running, held


def idle_while_held(tasks, ready, concurrency):
    """Process-seconds during which a worker had an idle pool process while other workers held
    prefetched tasks (each idle process counted against one held task at most)."""
    times = {t for x in tasks for t in (x["received"], x["received"] + GRACE_S, x["started"], x["finished"])}
    times = sorted(times | set(ready.values()))
    total = 0.0
    for a, b in zip(times, times[1:], strict=False):
        mid = (a + b) / 2
        state = {w: _state(tasks, w, mid) for w in ready if ready[w] <= mid}
        for w, (running, _) in state.items():
            idle = max(0, concurrency[w] - running)
            held_elsewhere = sum(held for v, (_, held) in state.items() if v != w)
            total += min(idle, held_elsewhere) * (b - a)
    return total


def analyze(records, concurrency, seconds, since=0.0):
    """Long tasks' makespan (first received -> last finished) against the ideal (every process of the
    workers in `concurrency` busy: ceil(tasks / processes) x seconds), and the unfair idle time."""
    ready = {r["worker"]: r["t"] for r in records if r["event"] == "ready" and r["worker"] in concurrency}
    found = tasks_of(records, since)
    end = max([r["t"] for r in records] or [since])
    tasks = [
        {
            **x,
            "started": end if x["started"] is None else x["started"],
            "finished": end if x["finished"] is None else x["finished"],
        }
        for x in found.values()
        if x["worker"] in concurrency
    ]
    for x in tasks:  # a worker's first task proves it ready, should its ready line be missing
        ready.setdefault(x["worker"], x["received"])
    if not tasks:
        return {"tasks": 0}
    processes = sum(concurrency.values())
    makespan = max(x["finished"] for x in tasks) - min(x["received"] for x in tasks)
    ideal = math.ceil(len(tasks) / processes) * seconds
    idle = idle_while_held(tasks, ready, concurrency)
    return {
        "tasks": len(tasks),
        "finished": sum(1 for x in found.values() if x["finished"] is not None),
        "redelivered": sum(1 for x in found.values() if x["deliveries"] > 1),
        "per_worker": {w: sum(1 for x in tasks if x["worker"] == w) for w in sorted(concurrency)},
        "makespan_s": makespan,
        "ideal_s": ideal,
        "makespan_to_ideal": makespan / ideal if ideal else None,
        "idle_while_held_s": idle,
        "unfair": idle > UNFAIR_SHARE * seconds,
    }
