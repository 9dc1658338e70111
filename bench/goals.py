"""The bench's goals, each evaluated from the figures: met or not, with the number it was judged on.

Costs and ratios are the full bundle's against bare (the same Celery settings); "against off the
shelf" divides the bundle's monitoring cost by the off-the-shelf setup's, each against its own
baseline (bare and stock), so that Celery's cheaper defaults count for neither.
"""

MONITORING_MS = 1.5  # CPU the bundle's monitoring adds per trivial task, all processes
RATIO = {"trivial": 0.5, "cpu10": 0.9}  # full bundle's throughput / bare's
WORKER_MS = 0.25  # CPU monitoring adds per trivial task in the worker (paid by every worker of a fleet)
VS_OFFSHELF = 0.8  # the bundle's monitoring cost / the off-the-shelf setup's, same Celery settings
SCRAPE_S = 0.100  # the exporter's /metrics with three workers (median)
KIND_NAMES = {"trivial": "trivial", "cpu10": "10 ms"}


def _goal(text, value, limit, at_most, unit="{:.2f}"):
    return {
        "goal": text,
        "value": value,
        "limit": limit,
        "shown": unit.format(value),
        "met": value <= limit if at_most else value >= limit,
    }


def evaluate(results):
    """Every goal the results hold figures for, in a fixed order."""
    out = []
    t = results.get("throughput") or {}
    kinds = t.get("kinds", {})
    full = kinds.get("trivial", {}).get("configs", {}).get("full", {})
    if full.get("monitoring_ms_per_task"):
        out.append(
            _goal(
                f"monitoring CPU per trivial task <= {MONITORING_MS} ms (full bundle against bare)",
                full["monitoring_ms_per_task"]["median"],
                MONITORING_MS,
                True,
                "{:.2f} ms",
            )
        )
    for kind, limit in RATIO.items():
        ratio = kinds.get(kind, {}).get("configs", {}).get("full", {}).get("ratio_to_baseline")
        if ratio:
            out.append(_goal(f"full bundle >= {limit}x bare, {KIND_NAMES[kind]} tasks", ratio["median"], limit, False))
    if full.get("worker_ms_per_task_over_baseline"):
        out.append(
            _goal(
                f"worker-side cost per trivial task <= {WORKER_MS} ms",
                full["worker_ms_per_task_over_baseline"]["median"],
                WORKER_MS,
                True,
                "{:.2f} ms",
            )
        )
    for kind, data in kinds.items():
        vs = data.get("monitoring_cost_to_offshelf", {}).get("full")
        if vs is not None:
            text = f"monitoring cost <= {VS_OFFSHELF}x off the shelf's, same Celery settings, {KIND_NAMES[kind]} tasks"
            out.append(_goal(text, vs, VS_OFFSHELF, True, "{:.2f}x"))
    scrape = t.get("exporter_scrape")
    if scrape:
        text = f"exporter /metrics <= {SCRAPE_S * 1000:.0f} ms with {scrape['workers']} workers (median)"
        out.append(_goal(text, scrape["median_s"] * 1000, SCRAPE_S * 1000, True, "{:.0f} ms"))
    return out
