"""Printing the tuning sections: prefetch (and the per-queue recipe) and the py-spy profiles."""

from rich.table import Table

KIND_TITLES = {"trivial": "trivial", "cpu10": "10 ms"}


def _spread(s, fmt):
    return "-" if not s else " / ".join(fmt.format(s[k]) for k in ("min", "median", "max"))


def prefetch(console, p):
    short = Table(
        title=f"Prefetch: late acks, events off, no monitors ({p['rounds']} rounds; min / median / max; "
        "per_queue: the short tasks' worker)"
    )
    short.add_column("setting")
    kinds = [k for k in KIND_TITLES if any(k in row for row in p["short"].values())]
    for kind in kinds:
        short.add_column(f"{KIND_TITLES[kind]} tasks/s", justify="right")
        short.add_column(f"{KIND_TITLES[kind]} CPU ms/task", justify="right")
    for name, row in p["short"].items():
        cells = []
        for kind in kinds:
            cells += [_spread(row[kind]["rate"], "{:.0f}"), _spread(row[kind]["cpu_ms_per_task"], "{:.2f}")]
        short.add_row(name, *cells)
    console.print(short)
    long = p["long"]
    table = Table(
        title=f"Long tasks: {long['tasks']} x {long['seconds']:g} s on {long['workers']} workers x "
        f"{long['concurrency']} processes (backlog: queued before the workers start; burst: sent to idle workers)"
    )
    for col in (
        "setting",
        "scenario",
        "makespan s",
        "ideal s",
        "makespan / ideal",
        "tasks per worker",
        "idle while held s",
        "fair",
    ):
        table.add_column(col, justify="left" if col in ("setting", "scenario", "tasks per worker") else "right")
    for name, scenarios in p["long_tasks"].items():
        for scenario in ("backlog", "burst"):
            a = scenarios.get(scenario)
            if not a or not a.get("tasks"):
                table.add_row(name, scenario, *["-"] * 5, scenarios.get("error", "no tasks"))
                continue
            table.add_row(
                name,
                scenario,
                f"{a['makespan_s']:.1f}",
                f"{a['ideal_s']:.0f}",
                f"{a['makespan_to_ideal']:.2f}",
                " ".join(str(v) for v in a["per_worker"].values()),
                f"{a['idle_while_held_s']:.1f}",
                "no" if a["unfair"] else "yes",
            )
    console.print(table)
    console.print(f"per_queue: {p['labels'].get('per_queue', '')}; routes {p['routes']}")


def profile(console, prof):
    console.print(
        f"py-spy profiles of the full bundle, {prof['tasks']} trivial tasks at {prof['rate_hz']} Hz "
        f"(raw collapsed stacks in {prof['directory']}; speedscope opens them)"
    )
    for name, c in prof["components"].items():
        if "error" in c:
            console.print(f"{name}: {c['error']}")
            continue
        table = Table(
            title=f"{name}: {c['sampled_ms_per_task']:.3f} ms per task sampled, {c['cpu_ms_per_task']:.3f} ms CPU "
            f"measured ({c['samples']} samples)"
        )
        table.add_column("own time: function", justify="left")
        table.add_column("ms/task", justify="right")
        table.add_column("total time: function", justify="left")
        table.add_column("ms/task", justify="right")
        rows = max(len(c["top_own"]), len(c["top_total"]))
        for i in range(rows):
            own = c["top_own"][i] if i < len(c["top_own"]) else ("", None)
            total = c["top_total"][i] if i < len(c["top_total"]) else ("", None)
            table.add_row(
                own[0],
                "" if own[1] is None else f"{own[1]:.3f}",
                total[0],
                "" if total[1] is None else f"{total[1]:.3f}",
            )
        console.print(table)
