"""Printing the bench's figures (rich tables), the JSON file and the PNG chart."""
import html
import json

from rich.console import Console
from rich.table import Table

from bench.throughput import PROCESSES

GOALS = {"trivial": 0.5, "cpu10": 0.9}  # full bundle / bare (issue 6)
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
    console.print(f"[bold]make bench[/bold] on {meta['machine']}, {meta['started']}"
                  f"{'  (QUICK sizes: smoke only, not figures)' if meta['quick'] else ''}")
    console.print(f"background load before the run: {meta['background_load']:.0%} of the cores"
                  + ("  [yellow]high: figures are skewed[/yellow]" if meta["background_load"] > 0.15 else ""))
    if meta.get("conf"):
        console.print(f"settings overridden for this run: {meta['conf']}")
    for name, printer in (("throughput", throughput), ("capacity", capacity), ("memory", memory),
                          ("alerts", alerts), ("coldstart", coldstart)):
        if name in results:
            printer(console, results[name])


def throughput(console, t):
    for kind, data in t["kinds"].items():
        size = t["sizes"][kind]
        table = Table(title=f"Throughput, {KIND_TITLES[kind]} ({size} tasks, {t['rounds']} rounds; min / median / max)")
        for col in ("configuration", "tasks/s", "ratio to bare (paired)", "catch-up Flower s",
                    "catch-up exporter s", "runs losing events", "noisy runs"):
            table.add_column(col, justify="left" if col == "configuration" else "right")
        for name, row in data["configs"].items():
            table.add_row(name, spread(row["rate"]), spread(row["ratio_to_bare"], "{:.2f}"),
                          spread(row["catch_up_s"]["flower"], "{:.1f}"), spread(row["catch_up_s"]["exporter"], "{:.1f}"),
                          str(row["events_lost"]) if name.startswith("full") else "-", str(row["noisy_runs"]))
        console.print(table)
        cpu = Table(title=f"CPU seconds per 1,000 tasks, {KIND_TITLES[kind]} (medians; broker = delta of the shared beam.smp)")
        cpu.add_column("configuration")
        for p in PROCESSES + ("total",):
            cpu.add_column("other (not bench)" if p == "other" else p, justify="right")
        for name, row in data["configs"].items():
            cpu.add_row(name, *[num(row["cpu_s_per_1000"].get(p)) for p in PROCESSES + ("total",)])
        console.print(cpu)
        if any(row["noisy_runs"] for row in data["configs"].values()):
            console.print("noisy runs: other processes used more than 10% of the bench's CPU during them; "
                          "rerun on an idle machine for figures")
        for name, row in data["configs"].items():
            ratio = row.get("ratio_to_bare")
            if not ratio or not (name == "full" or name.startswith("full+")):
                continue
            ok = ratio["median"] >= GOALS[kind]
            what = "full bundle" if name == "full" else name
            console.print(f"{what} / bare, {KIND_TITLES[kind]}: median {ratio['median']:.2f} "
                          f"(goal >= {GOALS[kind]}): {'[green]met[/green]' if ok else '[red]not met[/red]'}")
        wm = data.get("worker_metrics")
        if wm and wm.get("ratio_on_to_off"):
            console.print(f"our worker metrics, {KIND_TITLES[kind]}: throughput on/off {spread(wm['ratio_on_to_off'], '{:.3f}')}, "
                          f"worker CPU on-off {num(wm['worker_cpu_s_per_1000_on_minus_off'], '{:+.3f}')} s per 1,000 tasks")
    if "collector_ms_per_scrape" in t:
        console.print(f"worker metrics collector: {t['collector_ms_per_scrape']:.2f} ms CPU per scrape = "
                      f"{t['collector_core_share_at_5s']:.3%} of a core at the 5 s scrape interval")


def capacity(console, c):
    table = Table(title=f"Pipeline capacity steps ({c['step_seconds']:.0f} s each; kept up = lags < {c['lag_limit_s']:.0f} s, event queues not growing)")
    for col in ("target/s", "published/s", "worker lag s", "Flower lag s", "exporter lag s",
                "Flower queue slope/s (max)", "exporter queue slope/s (max)", "kept up"):
        table.add_column(col, justify="right")
    for s in c["steps"]:
        q = s["queues"]
        table.add_row(f"{s['target_rate']:.0f}", f"{s['achieved_rate']:.0f}", f"{s['worker_lag_s']:.1f}",
                      num(s["event_lag_s"].get("flower"), "{:.1f}"), num(s["event_lag_s"].get("exporter"), "{:.1f}"),
                      f"{q['flower']['slope_per_s']:.1f} ({q['flower']['max_depth']})",
                      f"{q['exporter']['slope_per_s']:.1f} ({q['exporter']['max_depth']})",
                      "yes" if s["kept_up"] else "no: " + "; ".join(s["why_not"]))
    console.print(table)
    cap = c["capacity_tasks_per_s"]
    if cap is None:
        console.print("pipeline capacity: [red]below the lowest rate tried[/red]")
    else:
        console.print(f"pipeline capacity: [bold]{cap:.0f} tasks/s[/bold]"
                      + ("" if c["limit_found"] else " or more (no step failed; raise --capacity-rates)"))


def memory(console, m):
    table = Table(title=f"Monitor memory and /metrics scrape time (after catch-up + {m['settle_s']:.0f} s)")
    for col in ("names", "tasks", "Flower RSS MB", "Flower scrape ms (med)", "Flower series", "exporter RSS MB",
                "exporter scrape s (med)", "exporter series", "scrape / timeout (worst)"):
        table.add_column(col, justify="right")
    for p in m["points"]:
        f, e = p["flower"], p["exporter"]
        worst = max(f["scrape_s"]["max"] / f["scrape_timeout_s"], e["scrape_s"]["max"] / e["scrape_timeout_s"])
        table.add_row(str(p["names"]), str(p["tasks"]), f"{f['rss_mb']:.0f}", f"{f['scrape_s']['median'] * 1000:.1f}",
                      str(f["samples"]), f"{e['rss_mb']:.0f}", f"{e['scrape_s']['median']:.3f}", str(e["samples"]),
                      f"{worst:.2f}")
    console.print(table)


def alerts(console, a):
    console.print(f"alert latency ({a['alert']}, {a['profile']} profile): fault -> webhook {a['latency_s']:.1f} s; bound "
                  f"{a['bound_s']:.0f} s = scrape {a['scrape_s']:.0f} + evaluation {a['evaluation_s']:.0f} + for "
                  f"{a['for_s']:.0f} + group_wait {a['group_wait_s']:.0f}; ratio [bold]{a['ratio_to_bound']:.2f}x[/bold] (goal <= 1.1)")


def coldstart(console, c):
    if "skipped" in c:
        console.print(f"cold start: {c['skipped']}")
    elif "error" in c:
        console.print(f"cold start: [red]{c['error']}[/red]")
    else:
        console.print(f"cold start (python -m native up): services healthy {c['services_healthy_s']:.1f} s, every "
                      f"Prometheus target up {c['all_targets_up_s']:.1f} s (goal < 60 s)")


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
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, kind in enumerate(kinds):
        rows = t["kinds"][kind]["configs"]
        peak = max((r["rate"]["max"] for r in rows.values() if r["rate"]), default=1) * 1.1
        x0, plot_h = i * pw, height - top - bottom
        bw = (pw - 60) / max(1, len(rows))
        out.append(f'<text x="{x0 + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">'
                   f'{html.escape(KIND_TITLES[kind])}: tasks/s (median, min-max)</text>')
        out.append(f'<line x1="{x0 + 30}" y1="{top + plot_h}" x2="{x0 + pw - 30}" y2="{top + plot_h}" stroke="#333"/>')
        for j, (name, r) in enumerate(rows.items()):
            if not r["rate"]:
                continue
            y = lambda v: top + plot_h - v / peak * plot_h  # noqa: E731
            bx = x0 + 30 + j * bw + bw * 0.15
            w = bw * 0.7
            med = r["rate"]["median"]
            color = COLORS.get(name, EXTRA_COLORS[j % len(EXTRA_COLORS)])
            out.append(f'<rect x="{bx:.1f}" y="{y(med):.1f}" width="{w:.1f}" height="{top + plot_h - y(med):.1f}" '
                       f'fill="{color}"/>')
            cx = bx + w / 2
            out.append(f'<line x1="{cx:.1f}" y1="{y(r["rate"]["min"]):.1f}" x2="{cx:.1f}" y2="{y(r["rate"]["max"]):.1f}" '
                       'stroke="black" stroke-width="1.5"/>')
            ratio = r["ratio_to_bare"]["median"] if r["ratio_to_bare"] else None
            label = f"{med:.0f}" + (f" ({ratio:.2f}x)" if ratio is not None and name != "bare" else "")
            out.append(f'<text x="{cx:.1f}" y="{y(r["rate"]["max"]) - 6:.1f}" text-anchor="middle" font-size="12">{label}</text>')
            out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="12">{html.escape(name)}</text>')
    sizes = ", ".join(f"{KIND_TITLES[k]} {t['sizes'][k]} tasks" for k in kinds)
    out.append(f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle" font-size="12" fill="#555">'
               f'{html.escape(sizes)}, {t["rounds"]} rounds interleaved; ratio = paired median to bare'
               f'{html.escape("  " + note) if note else ""}</text>')
    out.append("</svg>")
    return "\n".join(out)


def write_chart(t, path, note=""):
    """Render the SVG in Debian Chromium through Playwright (no new dependency) and save a PNG."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch  # the project's launch flags and Chromium path
    svg = chart_svg(t, note=note)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 380})
            page.set_content(f"<html><body style='margin:0'>{svg}</body></html>")
            page.locator("svg").screenshot(path=str(path))
        finally:
            browser.close()
