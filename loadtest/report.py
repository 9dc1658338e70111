"""The numbers of a run (summary dict, also written by --json), the live progress line and the summary table."""

import collections
import json
import math

from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def percentile(values, q):
    """The q-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(plan, url, stats, records, started_at, waited, interrupted, alerts, alerts_error):
    """Everything the run measured, as plain data. `records` are the tracker's TaskRecords."""
    finished = [r for r in records if r.finished_at is not None]
    latencies = [r.finished_at - r.submitted_at for r in finished]
    failures = collections.Counter(r.error_type for r in finished if r.error_type)
    unfinished = len(records) - len(finished)
    run_seconds = (max(r.finished_at for r in finished) - started_at) if finished else 0.0
    submit_seconds = stats.seconds()
    summary = {
        "scenario": plan.scenario,
        "url": url,
        "planned": plan.count,
        "target_rate": plan.rate,
        "submitted": stats.submitted,
        "requests": stats.requests,
        "rejected_tasks": stats.rejected_tasks,
        "api_errors": dict(stats.errors),
        "succeeded": sum(r.state == "SUCCESS" for r in finished),
        "failed": sum(r.state != "SUCCESS" for r in finished),
        "unfinished": unfinished,
        # Lost: we waited the whole --wait-timeout and they still had not finished.
        "lost": unfinished if waited and not interrupted else 0,
        "submit_seconds": round(submit_seconds, 3),
        "achieved_rate": round(stats.submitted / submit_seconds, 2) if submit_seconds > 0 else None,
        "run_seconds": round(run_seconds, 3),
        "throughput": round(len(finished) / run_seconds, 2) if run_seconds > 0 else None,
        # Submit -> finish (the backend's date_done) per task: the whole wait the user sees.
        "latency_seconds": {
            **{f"p{q}": _round(percentile(latencies, q)) for q in (50, 95, 99)},
            "sum": _round(sum(latencies)) if latencies else None,
        },
        "failures_by_exception": dict(failures.most_common()),
        "alerts_firing": alerts,
        "alerts_error": alerts_error,
        "waited": waited,
        "interrupted": interrupted,
    }
    summary["exit_code"] = exit_code(summary)
    return summary


def _round(value):
    return None if value is None else round(value, 3)


def exit_code(summary):
    if summary["interrupted"]:
        return EXIT_INTERRUPTED
    if summary["api_errors"] or summary["lost"]:
        return EXIT_PROBLEM
    return EXIT_OK


def write_json(summary, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


def progress(planned, counts, elapsed, rejected):
    """The live display: a bar of finished tasks of the planned, and the count of each state."""
    finished = counts["succeeded"] + counts["failed"]
    line = Text.assemble(
        (f"{elapsed:6.1f} s  ", "dim"),
        f"submitted {counts['submitted']}/{planned}  ",
        ("queued ", "dim"),
        f"{counts['queued']}  ",
        ("running ", "cyan"),
        f"{counts['running']}  ",
        ("succeeded ", "green"),
        f"{counts['succeeded']}  ",
        ("failed ", "red"),
        f"{counts['failed']}",
    )
    if rejected:
        line.append(f"  rejected {rejected}", style="bold red")
    grid = Table.grid(padding=(0, 1))
    grid.add_row(ProgressBar(total=max(planned, 1), completed=finished, width=30), line)
    return grid


def _fmt(value, unit=""):
    if value is None:
        return "-"
    return f"{value:g}{unit}" if isinstance(value, (int, float)) else str(value)


def table(summary):
    t = Table(title=f"loadtest {summary['scenario']}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    rate = summary["target_rate"]
    t.add_row(
        "tasks", f"{summary['submitted']} submitted of {summary['planned']} planned in {summary['requests']} request(s)"
    )
    t.add_row(
        "outcome",
        f"[green]{summary['succeeded']} succeeded[/]  [red]{summary['failed']} failed[/]  "
        f"{summary['unfinished']} unfinished" + (f"  [bold red]{summary['lost']} lost[/]" if summary["lost"] else ""),
    )
    if summary["rejected_tasks"] or summary["api_errors"]:
        errors = "; ".join(f"{escape(k)} (x{v})" for k, v in summary["api_errors"].items())
        t.add_row("rejected", f"[bold red]{summary['rejected_tasks']} tasks[/]: {errors}")
    t.add_row(
        "submit rate",
        f"{_fmt(summary['achieved_rate'], '/s')} achieved"
        + (f" (target {rate:g}/s)" if rate else " (all at once)")
        + f" over {summary['submit_seconds']:g} s",
    )
    t.add_row("throughput", f"{_fmt(summary['throughput'], '/s')} finished over {summary['run_seconds']:g} s")
    lat = summary["latency_seconds"]
    t.add_row("latency", "  ".join(f"{k} {_fmt(v, ' s')}" for k, v in lat.items()) + "  (submit to finish)")
    failures = summary["failures_by_exception"]
    t.add_row("failures", ", ".join(f"{name}: {n}" for name, n in failures.items()) if failures else "none")
    if summary["alerts_error"]:
        t.add_row("alerts firing", f"[yellow]unknown: {escape(summary['alerts_error'])}[/]")
    else:
        t.add_row("alerts firing", ", ".join(summary["alerts_firing"]) or "none")
    if summary["interrupted"]:
        t.add_row("interrupted", "[yellow]yes (Ctrl-C): submitting stopped early[/]")
    elif not summary["waited"]:
        t.add_row("waited", "no (--no-wait): states are a snapshot at the end of submitting")
    return t
