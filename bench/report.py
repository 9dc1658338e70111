"""Printing the bench's figures (rich tables), the JSON file and the PNG chart."""

import html
import json

from rich.console import Console
from rich.table import Table

from bench import goals as bench_goals, tuning
from bench.throughput import PROCESSES

KIND_TITLES = {"trivial": "trivial task", "cpu10": "10 ms CPU-bound task"}


def spread(s, fmt="{:.0f}", scale=1.0):
    if not s:
        return "-"
    return " / ".join(fmt.format(s[k] * scale) for k in ("min", "median", "max"))


def num(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)


def print_all(results, console=None):
    console = console or Console()
    meta = results["meta"]
    console.print(
        f"[bold]make bench[/bold] on {meta['machine']}, {meta['started']}"
        f"{'  (QUICK sizes: smoke only, not figures)' if meta['quick'] else ''}"
    )
    console.print(
        f"background load before the run: {meta['background_load']:.0%} of the cores"
        + ("  [yellow]high: figures are skewed[/yellow]" if meta["background_load"] > 0.15 else "")
    )
    if meta.get("conf"):
        console.print(f"settings overridden for this run: {meta['conf']}")
    for name, printer in (
        ("throughput", throughput),
        ("prefetch", tuning.prefetch),
        ("profile", tuning.profile),
        ("capacity", capacity),
        ("memory", memory),
        ("fleet", fleet),
        ("alerts", alerts),
        ("coldstart", coldstart),
    ):
        if name in results:
            printer(console, results[name])
    rows = bench_goals.evaluate(results)
    if rows:
        goals(console, rows)


def throughput(console, t):
    for kind, data in t["kinds"].items():
        rates_table(console, t, kind, data)
        cpu_table(console, kind, data)
        cost_table(console, kind, data)
        offshelf_line(console, kind, data)
        if any(row["noisy_runs"] for row in data["configs"].values()):
            console.print(
                "noisy runs: other processes used more than 10% of the bench's CPU during them; "
                "rerun on an idle machine for figures"
            )
        reliability_line(console, kind, data.get("reliability"))
        comparison_lines(console, kind, data, t)
    if "collector_ms_per_scrape" in t:
        console.print(
            f"worker metrics collector: {t['collector_ms_per_scrape']:.2f} ms CPU per scrape = "
            f"{t['collector_core_share_at_5s']:.3%} of a core at the 5 s scrape interval"
        )
    scrape = t.get("exporter_scrape")
    if scrape:
        console.print(
            f"exporter /metrics with {scrape['workers']} workers: best {scrape['best_s'] * 1000:.0f} ms, median "
            f"{scrape['median_s'] * 1000:.0f} ms, worst {scrape['worst_s'] * 1000:.0f} ms ({len(scrape['seconds'])} scrapes)"
        )


def rates_table(console, t, kind, data):
    table = Table(
        title=f"Throughput, {KIND_TITLES[kind]} ({t['sizes'][kind]} tasks, {t['rounds']} rounds; min / median / max)"
    )
    for col in (
        "configuration",
        "baseline",
        "tasks/s",
        "ratio to baseline (paired)",
        "ratio to bare (paired)",
        "catch-up Flower s",
        "catch-up exporter s",
        "runs losing events",
        "noisy runs",
    ):
        table.add_column(col, justify="left" if col in ("configuration", "baseline") else "right")
    for name, row in data["configs"].items():
        table.add_row(
            name,
            row["baseline"],
            spread(row["rate"]),
            spread(row["ratio_to_baseline"], "{:.2f}"),
            spread(row["ratio_to_bare"], "{:.2f}"),
            spread(row["catch_up_s"]["flower"], "{:.1f}"),
            spread(row["catch_up_s"]["exporter"], "{:.1f}"),
            str(row["events_lost"]) if name.startswith("full") else "-",
            str(row["noisy_runs"]),
        )
    console.print(table)


def cpu_table(console, kind, data):
    cpu = Table(
        title=f"CPU seconds per 1,000 tasks, {KIND_TITLES[kind]} (medians; broker = delta of the shared beam.smp)"
    )
    cpu.add_column("configuration")
    for p in PROCESSES + ("total",):
        cpu.add_column("other (not bench)" if p == "other" else p, justify="right")
    for name, row in data["configs"].items():
        cpu.add_row(name, *[num(row["cpu_s_per_1000"].get(p)) for p in PROCESSES + ("total",)])
    console.print(cpu)


def cost_table(console, kind, data):
    cost = Table(
        title=f"What monitoring adds, {KIND_TITLES[kind]} (paired by round with the bare run of the same Celery "
        "settings; min / median / max)"
    )
    for col in (
        "configuration",
        "baseline",
        "CPU ms per task, all processes",
        "worker CPU ms per task",
        "events lost Flower %",
        "events lost exporter %",
        "cost / off-the-shelf's",
    ):
        cost.add_column(col, justify="left" if col in ("configuration", "baseline") else "right")
    vs = data.get("monitoring_cost_to_offshelf") or {}
    for name, row in data["configs"].items():
        if "monitoring_ms_per_task" not in row:
            continue  # a baseline
        lost = row.get("events_lost_pct", {})
        cost.add_row(
            name,
            row["baseline"],
            spread(row.get("monitoring_ms_per_task"), "{:.2f}"),
            spread(row.get("worker_ms_per_task_over_baseline"), "{:.2f}"),
            spread(lost.get("flower"), "{:.1f}"),
            spread(lost.get("exporter"), "{:.1f}"),
            num(vs.get(name), "{:.2f}x"),
        )
    console.print(cost)


def offshelf_line(console, kind, data):
    vs = data.get("monitoring_cost_to_offshelf") or {}
    if "full" not in vs:
        return
    worst = lambda row: max((v["max"] for v in row["events_lost_pct"].values() if v), default=0.0)  # noqa: E731
    console.print(
        f"with equal Celery settings (each against its own bare run), the bundle's monitoring costs {vs['full']:.2f}x "
        f"what the off-the-shelf setup's costs, {KIND_TITLES[kind]}; off the shelf lost up to "
        f"{worst(data['configs']['offshelf']):.1f}% of events, the bundle {worst(data['configs']['full']):.1f}%"
    )


def reliability_line(console, kind, rel):
    if not rel:
        return
    console.print(
        f"reliability settings (late acks, reject on worker lost, prefetch 1, STARTED state) against Celery's "
        f"defaults, {KIND_TITLES[kind]}, bare / stock: throughput {spread(rel['ratio'], '{:.2f}')}, CPU per task "
        f"{spread(rel['cpu_ms_per_task'], '{:+.2f}')} ms (worker {spread(rel['worker_ms_per_task'], '{:+.2f}')} ms). "
        "They buy: no task lost when a worker dies mid-task (tests/reliability/test_faults.py), long tasks spread "
        "over every worker instead of waiting prefetched behind a busy one (--sections prefetch)"
    )


def comparison_lines(console, kind, data, t):
    wm = data.get("worker_metrics")
    if wm:
        console.print(
            f"our worker metrics, {KIND_TITLES[kind]}: throughput on/off {spread(wm['ratio'], '{:.3f}')}, "
            f"worker CPU on - off {spread(wm['worker_ms_per_task'], '{:+.3f}')} ms per task"
        )
    for name, pair in (data.get("variants_vs_full") or {}).items():
        if not pair:
            continue
        env = dict(t.get("variant_env", {}).get(name, {}))
        what = (
            "the worker's latency metrics (worker/latency.py) cost, full - " + name
            if env.get("WORKER_LATENCY_METRICS", "1").lower() in ("0", "off", "false", "no")
            else f"full - {name}"
        )
        console.print(
            f"{what}, {KIND_TITLES[kind]}: worker CPU {spread(pair['worker_ms_per_task'], '{:+.3f}')} ms per task, "
            f"all processes {spread(pair['cpu_ms_per_task'], '{:+.2f}')} ms; throughput full / {name} "
            f"{spread(pair['ratio'], '{:.2f}')}"
        )


def goals(console, rows):
    table = Table(title="Goals (medians)")
    for col in ("goal", "measured", ""):
        table.add_column(col, justify="left" if col == "goal" else "right")
    for g in rows:
        table.add_row(g["goal"], g["shown"], "[green]met[/green]" if g["met"] else "[red]not met[/red]")
    console.print(table)


def capacity(console, c):
    table = Table(
        title=f"Pipeline capacity steps ({c['step_seconds']:.0f} s each; kept up = lags < {c['lag_limit_s']:.0f} s, event queues not growing)"
    )
    for col in (
        "target/s",
        "published/s",
        "worker lag s",
        "Flower lag s",
        "exporter lag s",
        "Flower queue slope/s (max)",
        "exporter queue slope/s (max)",
        "kept up",
    ):
        table.add_column(col, justify="right")
    for s in c["steps"]:
        q = s["queues"]
        table.add_row(
            f"{s['target_rate']:.0f}",
            f"{s['achieved_rate']:.0f}",
            f"{s['worker_lag_s']:.1f}",
            num(s["event_lag_s"].get("flower"), "{:.1f}"),
            num(s["event_lag_s"].get("exporter"), "{:.1f}"),
            f"{q['flower']['slope_per_s']:.1f} ({q['flower']['max_depth']})",
            f"{q['exporter']['slope_per_s']:.1f} ({q['exporter']['max_depth']})",
            "yes" if s["kept_up"] else "no: " + "; ".join(s["why_not"]),
        )
    console.print(table)
    cap = c["capacity_tasks_per_s"]
    if cap is None:
        console.print("pipeline capacity: [red]below the lowest rate tried[/red]")
    else:
        console.print(
            f"pipeline capacity: [bold]{cap:.0f} tasks/s[/bold]"
            + ("" if c["limit_found"] else " or more (no step failed; raise --capacity-rates)")
        )


def memory(console, m):
    table = Table(title=f"Monitor memory and /metrics scrape time (after catch-up + {m['settle_s']:.0f} s)")
    for col in (
        "names",
        "tasks",
        "Flower RSS MB",
        "Flower scrape ms (med)",
        "Flower series",
        "exporter RSS MB",
        "exporter scrape s (med)",
        "exporter series",
        "scrape / timeout (worst)",
    ):
        table.add_column(col, justify="right")
    for p in m["points"]:
        f, e = p["flower"], p["exporter"]
        worst = max(f["scrape_s"]["max"] / f["scrape_timeout_s"], e["scrape_s"]["max"] / e["scrape_timeout_s"])
        table.add_row(
            str(p["names"]),
            str(p["tasks"]),
            f"{f['rss_mb']:.0f}",
            f"{f['scrape_s']['median'] * 1000:.1f}",
            str(f["samples"]),
            f"{e['rss_mb']:.0f}",
            f"{e['scrape_s']['median']:.3f}",
            str(e["samples"]),
            f"{worst:.2f}",
        )
    console.print(table)


def fleet(console, f):
    table = Table(
        title=f"Fleet simulation: {f['task_rate']:g} tasks/s over {f['names']} task names and "
        f"{f['queues']} queues, heartbeat every {f['heartbeat_s']:g} s per worker, {f['seconds']:g} s per point"
    )
    for col in (
        "workers",
        "events/s",
        "monitor",
        "cores",
        "CPU ms/event",
        "max events/s on 1 core",
        "RSS MB",
        "/metrics KB",
        "samples",
        "scrape s",
        "lag s",
        "lost %",
    ):
        table.add_column(col, justify="left" if col == "monitor" else "right")
    for p in f["points"]:
        for m in ("flower", "exporter"):
            d = p[m]
            table.add_row(
                str(p["workers"]),
                f"{p['events_per_s']:.0f}",
                m,
                f"{d['cpu_cores']:.2f}",
                f"{d['cpu_ms_per_event']:.3f}",
                num(d["max_events_per_s_one_core"], "{:.0f}"),
                f"{d['rss_mb']:.0f}",
                f"{d['metrics_bytes'] / 1024:.0f}",
                str(d["samples"]),
                f"{d['scrape_s']:.3f}",
                num(d["lag_s"], "{:.1f}"),
                f"{d['events_lost_pct']:.1f}",
            )
        pr = p["prometheus"]
        table.add_row(
            str(p["workers"]),
            "",
            "prometheus",
            f"{pr['cpu_cores']:.2f}",
            "",
            "",
            f"{pr['rss_mb']:.0f}",
            "",
            f"{pr['head_series']} series",
            f"rules {pr['rule_eval_s'] * 1000:.1f} ms",
            "",
            "",
        )
    console.print(table)
    last = f["points"][-1]
    for m in ("flower", "exporter"):
        top = sorted(last[m]["label_values"].items(), key=lambda kv: -kv[1])[:4]
        console.print(f"{m} label values at {last['workers']} workers: " + ", ".join(f"{k} {v}" for k, v in top))


def alerts(console, a):
    console.print(
        f"alert latency ({a['alert']}, {a['profile']} profile): fault -> webhook {a['latency_s']:.1f} s; bound "
        f"{a['bound_s']:.0f} s = scrape {a['scrape_s']:.0f} + evaluation {a['evaluation_s']:.0f} + for "
        f"{a['for_s']:.0f} + group_wait {a['group_wait_s']:.0f}; ratio [bold]{a['ratio_to_bound']:.2f}x[/bold] (goal <= 1.1)"
    )


def coldstart(console, c):
    if "skipped" in c:
        console.print(f"cold start: {c['skipped']}")
    elif "error" in c:
        console.print(f"cold start: [red]{c['error']}[/red]")
    else:
        console.print(
            f"cold start (python -m native up): services healthy {c['services_healthy_s']:.1f} s, every "
            f"Prometheus target up {c['all_targets_up_s']:.1f} s (goal < 60 s)"
        )


def write_json(results, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, default=str)
        f.write("\n")


# --- chart -------------------------------------------------------------------------------------

COLORS = {"bare": "#4c72b0", "events": "#dd8452", "full": "#55a868", "full_wm_off": "#8c8c8c", "stock": "#64b5cd"}
EXTRA_COLORS = ["#c44e52", "#8172b3", "#937860", "#da8bc3", "#ccb974"]  # variants (full+NAME)


def chart_svg(t, width=900, height=380, note=""):
    """One panel per task kind (own scale): median tasks/s per configuration, min-max whisker, ratio."""
    kinds = list(t["kinds"])
    pw = width / len(kinds)
    top, bottom = 50, 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for i, kind in enumerate(kinds):
        rows = t["kinds"][kind]["configs"]
        peak = max((r["rate"]["max"] for r in rows.values() if r["rate"]), default=1) * 1.1
        x0, plot_h = i * pw, height - top - bottom
        bw = (pw - 60) / max(1, len(rows))
        out.append(
            f'<text x="{x0 + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">'
            f"{html.escape(KIND_TITLES[kind])}: tasks/s (median, min-max)</text>"
        )
        out.append(f'<line x1="{x0 + 30}" y1="{top + plot_h}" x2="{x0 + pw - 30}" y2="{top + plot_h}" stroke="#333"/>')
        for j, (name, r) in enumerate(rows.items()):
            if not r["rate"]:
                continue
            y = lambda v: top + plot_h - v / peak * plot_h  # noqa: E731
            bx = x0 + 30 + j * bw + bw * 0.15
            w = bw * 0.7
            med = r["rate"]["median"]
            color = COLORS.get(name, EXTRA_COLORS[j % len(EXTRA_COLORS)])
            out.append(
                f'<rect x="{bx:.1f}" y="{y(med):.1f}" width="{w:.1f}" height="{top + plot_h - y(med):.1f}" '
                f'fill="{color}"/>'
            )
            cx = bx + w / 2
            out.append(
                f'<line x1="{cx:.1f}" y1="{y(r["rate"]["min"]):.1f}" x2="{cx:.1f}" y2="{y(r["rate"]["max"]):.1f}" '
                'stroke="black" stroke-width="1.5"/>'
            )
            ratio = r["ratio_to_baseline"]["median"] if r["ratio_to_baseline"] else None
            label = f"{med:.0f}" + (f" ({ratio:.2f}x)" if ratio is not None and r["baseline"] != name else "")
            out.append(
                f'<text x="{cx:.1f}" y="{y(r["rate"]["max"]) - 6:.1f}" text-anchor="middle" font-size="12">{label}</text>'
            )
            out.append(
                f'<text x="{cx:.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="12">{html.escape(name)}</text>'
            )
    sizes = ", ".join(f"{KIND_TITLES[k]} {t['sizes'][k]} tasks" for k in kinds)
    out.append(
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle" font-size="12" fill="#555">'
        f"{html.escape(sizes)}, {t['rounds']} rounds interleaved; ratio = paired median to its baseline (bare, or stock for offshelf)"
        f"{html.escape('  ' + note) if note else ''}</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def write_chart(t, path, note=""):
    """The throughput chart as an SVG file (opens in any browser; Markdown renders it)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(chart_svg(t, note=note))


def _svg(width, height, body, title):
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
            f'<rect width="{width}" height="{height}" fill="white"/>',
            f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{html.escape(title)}</text>',
            *body,
            "</svg>",
        ]
    )


CPU_COLORS = {
    "worker": "#4c72b0",
    "broker": "#dd8452",
    "publisher": "#55a868",
    "flower": "#c44e52",
    "exporter": "#8172b3",
    "prometheus": "#937860",
}


def cpu_svg(t, kind="trivial", width=900, height=420, note=""):
    """Stacked bars: CPU ms per task of each process, per configuration (medians)."""
    rows = t["kinds"][kind]["configs"]
    parts = [p for p in PROCESSES if p in CPU_COLORS]
    totals = {n: sum(r["cpu_s_per_1000"].get(p) or 0 for p in parts) for n, r in rows.items()}
    peak = max(totals.values() or [1]) * 1.15 or 1
    top, bottom, left = 50, 70, 60
    plot_h, plot_w = height - top - bottom, width - left - 150
    bw = plot_w / max(1, len(rows))
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>']
    for j, (name, r) in enumerate(rows.items()):
        y = top + plot_h
        x = left + j * bw + bw * 0.15
        for p in parts:
            v = r["cpu_s_per_1000"].get(p) or 0
            h = v / peak * plot_h
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.7:.1f}" height="{h:.1f}" fill="{CPU_COLORS[p]}"/>'
            )
        body.append(
            f'<text x="{x + bw * 0.35:.1f}" y="{y - 6:.1f}" text-anchor="middle" font-size="12">{totals[name]:.2f}</text>'
        )
        body.append(
            f'<text x="{x + bw * 0.35:.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="11">{html.escape(name)}</text>'
        )
    for i, p in enumerate(parts):
        body.append(
            f'<rect x="{width - 130}" y="{top + i * 20}" width="12" height="12" fill="{CPU_COLORS[p]}"/>'
            f'<text x="{width - 112}" y="{top + i * 20 + 11}" font-size="12">{p}</text>'
        )
    body.append(
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle" font-size="12" fill="#555">'
        f"{t['sizes'][kind]} tasks, {t['rounds']} rounds; medians per process{html.escape('  ' + note) if note else ''}</text>"
    )
    return _svg(width, height, body, f"CPU ms per {KIND_TITLES[kind]}, by process (stacked)")


def fleet_svg(f, width=900, height=420, note=""):
    """Per simulated worker count (log scale): each monitor's cores and RSS."""
    pts = f["points"]
    top, bottom, left = 50, 70, 60
    plot_h, pw = height - top - bottom, (width - 2 * left) / 2
    body = []
    import math

    xs = [math.log10(p["workers"]) for p in pts]
    lo, hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    styles = {"flower": "#c44e52", "exporter": "#8172b3", "prometheus": "#937860"}
    for k, (key, unit) in enumerate((("cpu_cores", "cores"), ("rss_mb", "MB RSS"))):
        x0 = left + k * (pw + 20)
        peak = max(p[m][key] for p in pts for m in styles) * 1.15 or 1
        body.append(f'<line x1="{x0}" y1="{top + plot_h}" x2="{x0 + pw - 20}" y2="{top + plot_h}" stroke="#333"/>')
        body.append(f'<text x="{x0 + pw / 2}" y="{top - 8}" text-anchor="middle" font-size="13">{unit}</text>')
        X = lambda v: x0 + (v - lo) / (hi - lo) * (pw - 40) + 10  # noqa: E731
        Y = lambda v: top + plot_h - v / peak * plot_h  # noqa: E731
        for m, color in styles.items():
            line = " ".join(f"{X(x):.1f},{Y(p[m][key]):.1f}" for x, p in zip(xs, pts, strict=True))
            body.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
            for x, p in zip(xs, pts, strict=True):
                body.append(
                    f'<circle cx="{X(x):.1f}" cy="{Y(p[m][key]):.1f}" r="3" fill="{color}"/>'
                    f'<text x="{X(x) + 4:.1f}" y="{Y(p[m][key]) - 4:.1f}" font-size="10">{p[m][key]:.2f}</text>'
                    if key == "cpu_cores"
                    else f'<circle cx="{X(x):.1f}" cy="{Y(p[m][key]):.1f}" r="3" fill="{color}"/>'
                    f'<text x="{X(x) + 4:.1f}" y="{Y(p[m][key]) - 4:.1f}" font-size="10">{p[m][key]:.0f}</text>'
                )
        for x, p in zip(xs, pts, strict=True):
            body.append(
                f'<text x="{X(x):.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">{p["workers"]}</text>'
            )
    for i, (m, color) in enumerate(styles.items()):
        body.append(
            f'<rect x="{left + i * 120}" y="{height - 44}" width="12" height="12" fill="{color}"/>'
            f'<text x="{left + i * 120 + 16}" y="{height - 34}" font-size="12">{m}</text>'
        )
    body.append(
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle" font-size="12" fill="#555">'
        f"simulated workers (log scale); {f['task_rate']:g} tasks/s, {f['names']} names, {f['queues']} queues"
        f"{html.escape('  ' + note) if note else ''}</text>"
    )
    return _svg(width, height, body, "Fleet simulation: monitor CPU and memory by worker count")


def write_charts(results, directory, note=""):
    """Every chart the results allow, as SVG files in `directory`; returns their paths."""
    import os

    out = []
    charts = []
    if "throughput" in results:
        charts.append(("performance-throughput.svg", chart_svg(results["throughput"], note=note)))
        for kind in results["throughput"]["kinds"]:
            charts.append((f"performance-cpu-{kind}.svg", cpu_svg(results["throughput"], kind, note=note)))
    if "fleet" in results and results["fleet"].get("points"):
        charts.append(("performance-fleet.svg", fleet_svg(results["fleet"], note=note)))
    for name, svg in charts:
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg)
        out.append(path)
    return out
