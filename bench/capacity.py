"""Section 2: the highest sustained task rate at which Flower and the exporter keep up.

The full bundle runs once; the publisher holds each rate for a step. A step is kept up when, after it,
the worker finished within LAG s, both monitors counted every task within LAG s of the last completion
(event lag), and neither monitor's celeryev.* queue grew during the step (least-squares slope of its
depth, read exactly by passive declares). The rates step up until one fails, then one bisection.
"""

import threading
import time

from bench import measure
from bench.configs import CONFIGS
from bench.publisher import Publisher
from bench.state import BenchError

LAG = 5.0


def slope(points):
    """Least-squares slope of (t, y) points, per second."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / var if var else 0.0


def step(bench, rate, seconds, done_before, owners, depths, say):
    pub = Publisher(bench, "--kind", "add", "--rate", rate, "--duration", seconds, "--wait-go")
    samples = {m: [] for m in owners}
    finished = threading.Event()
    result = {}

    def collect():
        try:
            result.update(pub.result(seconds + 60))
        except Exception as exc:  # noqa: BLE001  reported below, in the orchestrating thread
            result["error"] = exc
        finally:
            finished.set()

    t0 = pub.go()
    threading.Thread(target=collect, daemon=True).start()
    while not finished.is_set():
        now = time.time()
        for monitor, queue in owners.items():
            depth = depths(queue)
            if depth is not None:
                samples[monitor].append((now - t0, depth))
        time.sleep(0.5)
    if "error" in result:
        raise BenchError(f"the publisher failed at {rate}/s: {result['error']}")
    n = done_before + result["published"]
    t_done = measure.wait_count(bench.counter, n, timeout=seconds + 120)
    caught = measure.catch_up(bench, n, t_done)
    achieved = result["published"] / (result["t_end"] - t0)
    growth = {}
    for monitor, points in samples.items():
        # Skip the first third: the queue fills up to its working depth while the rate ramps up.
        steady = [p for p in points if p[0] >= seconds / 3]
        growth[monitor] = {"slope_per_s": slope(steady), "max_depth": max((d for _, d in points), default=0)}
    growing = [m for m, g in growth.items() if g["slope_per_s"] > max(1.0, 0.02 * achieved)]
    worker_lag = t_done - result["t_end"]
    lags = {m: caught[m]["lag"] for m in caught}
    reasons = []
    if worker_lag > LAG:
        reasons.append(f"worker {worker_lag:.1f}s behind")
    reasons += [
        f"{m} lag {'>120s (events lost?)' if lag is None else f'{lag:.1f}s'}"
        for m, lag in lags.items()
        if lag is None or lag >= LAG
    ]
    reasons += [f"{m} queue growing {growth[m]['slope_per_s']:.0f}/s" for m in growing]
    out = {
        "target_rate": rate,
        "achieved_rate": achieved,
        "published": result["published"],
        "worker_lag_s": max(0.0, worker_lag),
        "event_lag_s": lags,
        "queues": growth,
        "kept_up": not reasons,
        "why_not": reasons,
    }
    say(
        f"  {rate:6.0f}/s target, {achieved:6.0f}/s published: "
        + ("kept up" if not reasons else "NOT kept up: " + "; ".join(reasons))
        + "  (lag flower "
        + _s(lags.get("flower"))
        + ", exporter "
        + _s(lags.get("exporter"))
        + f", max depth {max(g['max_depth'] for g in growth.values())})"
    )
    return out


def run(bench, rates, seconds, say):
    say(f"capacity: full bundle, {seconds:.0f}s per step, rates {', '.join(f'{r:g}' for r in rates)}/s")
    bench.up(CONFIGS["full"])
    depths = None
    try:
        owners = bench.event_queue_owners()
        depths = bench.depths()
        steps, done = [], 0
        for rate in rates:
            s = step(bench, rate, seconds, done, owners, depths, say)
            done += s["published"]
            steps.append(s)
            if not s["kept_up"]:
                break
            time.sleep(2)
        passed = [s for s in steps if s["kept_up"]]
        failed = [s for s in steps if not s["kept_up"]]
        if passed and failed:
            mid = (passed[-1]["target_rate"] + failed[-1]["target_rate"]) / 2
            s = step(bench, round(mid), seconds, done, owners, depths, say)
            steps.append(s)
        ok = [s for s in steps if s["kept_up"]]
        best = max(ok, key=lambda s: s["achieved_rate"]) if ok else None
        return {
            "step_seconds": seconds,
            "lag_limit_s": LAG,
            "steps": steps,
            "capacity_tasks_per_s": best["achieved_rate"] if best else None,
            "limit_found": bool(failed),
            "event_queues": owners,
        }
    finally:
        if depths:
            depths.close()
        bench.down()


def _s(v):
    return "n/a" if v is None else f"{v:.1f}s"
