"""Section 1: stream throughput of each configuration and CPU per 1,000 tasks of each process.

Method (docs/performance.md): a fresh worker (and fresh monitors) per run; a separate publisher
process publishes N tasks as fast as it can; the clock runs from its first publish to the N-th
task_postrun. Configurations are interleaved within each round. Every ratio and cost is paired by
round with the configuration's baseline: the bare run with the same Celery settings (bare for the
bundle, stock for the off-the-shelf setup).
"""

import time

import requests

from bench import counter, measure, scrape
from bench.configs import CONFIGS
from bench.probes import cpu_seconds
from bench.publisher import Publisher
from bench.state import PORTS, BenchError

KINDS = {"trivial": "add", "cpu10": "cpu10"}
PROCESSES = ("worker", "broker", "publisher", "flower", "exporter", "prometheus", "other")


def one_run(bench, config, kind, n, say):
    """A fresh configuration, one stream of n tasks through it."""
    bench.up(config)
    try:
        return stream(bench, config, kind, n, say)
    finally:
        bench.down()


def stream(bench, config, kind, n, say):
    """n tasks of `kind` published as fast as one producer can, on the running configuration (which
    may have counted earlier streams' tasks already)."""
    pub = Publisher(bench, "--kind", KINDS[kind], "--count", n, "--wait-go")
    done_before, _ = counter.read(bench.counter)
    before, busy0, steal0 = bench.cpu(), measure.busy_cpu(), measure.steal_cpu()
    t0 = pub.go()
    try:
        t_done = measure.wait_count(bench.counter, done_before + n, timeout=max(120.0, n / 20))
    except BenchError as exc:
        left = {q["name"]: q["messages"] for q in bench.vhost_queues() if q["messages"]}
        raise BenchError(f"{exc} (task queues now: {left or 'empty'})") from None
    at_done = bench.cpu()
    published = pub.result(60)
    run = {
        "config": config.name,
        "kind": kind,
        "tasks": n,
        "seconds": t_done - t0,
        "rate": n / (t_done - t0),
        "publish_rate": n / (published["t_end"] - published["t0"]),
    }
    after = at_done
    if config.monitors:
        caught = measure.catch_up(bench, n, t_done)
        after = {**bench.cpu(), **{m: caught[m]["cpu"] for m in ("flower", "exporter")}}
        run["catch_up"] = {m: caught[m]["lag"] for m in caught}
        run["events_counted"] = {m: caught[m]["count"] for m in caught}
    # The worker and publisher are done at the last completion; the monitors (and the broker
    # feeding them) when they caught up.
    cpu = {p: after[p] - before[p] for p in after if after.get(p) is not None and before.get(p) is not None}
    cpu["worker"] = at_done["worker"] - before["worker"]
    cpu["publisher"] = published["cpu"]
    cpu["other"] = max(0.0, measure.busy_cpu() - busy0 - sum(cpu.values()))
    run["cpu"] = cpu
    run["steal_s"] = measure.steal_cpu() - steal0
    if config.name == "full" and not getattr(bench, "_collector_measured", False):
        run["collector_ms_per_scrape"] = collector_cost(bench)
        bench._collector_measured = True
    catch = run.get("catch_up", {})
    say(
        f"  {config.name:<12} {kind:<8} {run['rate']:8.0f} tasks/s"
        + (f"  catch-up flower {_s(catch['flower'])} exporter {_s(catch['exporter'])}" if catch else "")
    )
    return run


def collector_cost(bench, scrapes=20):
    """CPU of one worker /metrics scrape, in ms of the worker's main process (where the collector runs)."""
    pid = bench.pid("worker")
    url = f"http://127.0.0.1:{PORTS['worker_metrics']}/metrics"
    requests.get(url, timeout=5)
    c0 = cpu_seconds(pid)
    for _ in range(scrapes):
        requests.get(url, timeout=5)
    return (cpu_seconds(pid) - c0) / scrapes * 1000


def run(bench, configs, kinds, sizes, rounds, say):
    runs, failed = [], []
    for r in range(1, rounds + 1):
        for kind in kinds:
            for name in configs:
                say(f"throughput round {r}/{rounds}: {name} / {kind} ({sizes[kind]} tasks)")
                try:
                    result = one_run(bench, CONFIGS[name], kind, sizes[kind], lambda m: say(m))
                except BenchError as exc:  # one stuck run must not lose the others: it is left out
                    say(f"  {name} {kind} round {r}: left out: {exc}")
                    failed.append({"config": name, "kind": kind, "round": r, "error": str(exc)})
                    continue
                result["round"] = r
                runs.append(result)
                time.sleep(1)
    if not runs:
        raise BenchError(f"every run failed; first: {failed[0]['error']}")
    out = summarize(runs, configs, kinds, sizes, rounds)
    out["failed_runs"] = failed
    if "full" in configs:
        out["exporter_scrape"] = scrape.exporter_on_three_workers(bench, say)
    return out


def summarize(runs, configs, kinds, sizes, rounds):
    out = {
        "rounds": rounds,
        "sizes": sizes,
        "configs": {c: CONFIGS[c].label for c in configs},
        "baselines": {c: CONFIGS[c].baseline for c in configs},
        "variant_env": {c: dict(CONFIGS[c].worker_env) for c in configs if CONFIGS[c].worker_env},
        "kinds": {},
        "runs": runs,
    }
    for kind in kinds:
        by = {(r["config"], r["round"]): r for r in runs if r["kind"] == kind}
        table = {name: config_row(name, by, rounds) for name in configs}
        cost = {n: table[n]["monitoring_ms_per_task"] for n in table if table[n].get("monitoring_ms_per_task")}
        vs = {}
        if "offshelf" in cost and cost["offshelf"]["median"] > 0:
            vs = {n: cost[n]["median"] / cost["offshelf"]["median"] for n in cost}
        out["kinds"][kind] = {
            "configs": table,
            "worker_metrics": pair_stats(by, "full", "full_wm_off", rounds),
            "reliability": pair_stats(by, "bare", "stock", rounds),
            "variants_vs_full": {n: pair_stats(by, "full", n, rounds) for n in configs if n.startswith("full+")},
            "monitoring_cost_to_offshelf": vs,
        }
    costs = [r["collector_ms_per_scrape"] for r in runs if "collector_ms_per_scrape" in r]
    if costs:
        # Prometheus scrapes it every scrape_interval (5 s): the collector's share of one core.
        out["collector_ms_per_scrape"] = costs[0]
        out["collector_core_share_at_5s"] = costs[0] / 1000 / 5
    return out


def config_row(name, by, rounds):
    """One configuration's figures; ratios and costs paired by round with its baseline."""
    rs = [by[(name, r)] for r in range(1, rounds + 1) if (name, r) in by]
    base = CONFIGS[name].baseline
    pairs = [(by[(name, r)], by[(base, r)]) for r in range(1, rounds + 1) if (name, r) in by and (base, r) in by]
    to_bare = [(by[(name, r)], by[("bare", r)]) for r in range(1, rounds + 1) if (name, r) in by and ("bare", r) in by]
    row = {
        "baseline": base,
        "rate": measure.spread([r["rate"] for r in rs]),
        "ratio_to_baseline": measure.spread([c["rate"] / b["rate"] for c, b in pairs]),
        "ratio_to_bare": measure.spread([c["rate"] / b["rate"] for c, b in to_bare]),
        "cpu_s_per_1000": {
            p: _median([r["cpu"].get(p) * 1000 / r["tasks"] for r in rs if p in r["cpu"]]) for p in PROCESSES
        },
        "catch_up_s": {m: measure.spread([r.get("catch_up", {}).get(m) for r in rs]) for m in ("flower", "exporter")},
        "events_lost": sum(1 for r in rs for v in r.get("events_counted", {}).values() if v is None or v < r["tasks"]),
        # Other load on the machine above 10% of the bench's own CPU: that run is skewed.
        "noisy_runs": sum(
            1 for r in rs if r["cpu"]["other"] > 0.1 * sum(v for p, v in r["cpu"].items() if p != "other")
        ),
        "events_lost_pct": {
            m: measure.spread(
                [
                    100.0 * (r["tasks"] - (r["events_counted"][m] or 0)) / r["tasks"]
                    for r in rs
                    if m in r.get("events_counted", {})
                ]
            )
            for m in ("flower", "exporter")
        },
    }
    row["cpu_s_per_1000"]["total"] = _median([total_ms(r) for r in rs])
    if not CONFIGS[name].is_baseline:
        # CPU seconds per 1,000 tasks = ms per task: what monitoring adds over the same Celery settings.
        row["monitoring_ms_per_task"] = measure.spread([total_ms(c) - total_ms(b) for c, b in pairs])
        row["worker_ms_per_task_over_baseline"] = measure.spread([_worker_ms(c) - _worker_ms(b) for c, b in pairs])
    return row


def pair_stats(by, first, second, rounds):
    """first against second, paired by round: throughput first/second, CPU ms per task first - second
    (all processes and the worker). {} unless both ran."""
    pairs = [(by[(first, r)], by[(second, r)]) for r in range(1, rounds + 1) if (first, r) in by and (second, r) in by]
    if not pairs:
        return {}
    return {
        "ratio": measure.spread([a["rate"] / b["rate"] for a, b in pairs]),
        "cpu_ms_per_task": measure.spread([total_ms(a) - total_ms(b) for a, b in pairs]),
        "worker_ms_per_task": measure.spread([_worker_ms(a) - _worker_ms(b) for a, b in pairs]),
    }


def _worker_ms(run):
    return run["cpu"]["worker"] * 1000 / run["tasks"]


def total_ms(run):
    """CPU seconds per 1,000 tasks of the bench's processes in one run."""
    return sum(run["cpu"].get(p, 0) for p in PROCESSES if p != "other") * 1000 / run["tasks"]


def _median(values):
    s = measure.spread(values)
    return s["median"] if s else None


def _s(value):
    return "lost events" if value is None else f"{value:.1f}s"
