"""`python -m bench [options]` (make bench ARGS=...): what the monitoring costs, side by side in one run.

Sections: throughput (bare / events / full bundle / full without worker metrics / off the shelf, and
--variant configurations; trivial and 10 ms tasks; each configuration's cost and ratio against the
bare run with the same Celery settings: bare, or stock for off the shelf), prefetch (late acks with
prefetch 1, 2, 4 on trivial, 10 ms and long tasks, and the per-queue recipe), profile (py-spy of each
component under trivial load), capacity (highest rate the monitors keep up with), memory (Flower and
exporter RSS and scrape time), fleet (N simulated workers' events: what each monitor needs), alerts
(fault -> webhook latency against its bound), coldstart (opt-in: --cold-start).
--quick uses tiny sizes (the smoke test); its figures are not measurements.
Exit codes: 0 done, 1 a section failed, 2 bad options, 130 interrupted.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
import traceback

from rich.console import Console

from bench.configs import SPEC_HELP

SECTIONS = ("throughput", "prefetch", "profile", "capacity", "memory", "fleet", "alerts", "coldstart")
# stock (bare with Celery's defaults) runs whenever offshelf does: it is offshelf's baseline.
CONFIG_NAMES = ("bare", "events", "full", "full_wm_off", "offshelf", "stock")
KINDS = ("trivial", "cpu10")
# Full-run defaults, and the --quick ones (used only for options not given).
FULL = {
    "tasks": 20000,
    "cpu_tasks": 2000,
    "rounds": 3,
    "capacity_rates": [200, 400, 600, 800, 1000, 1200, 1400, 1600],
    "step_seconds": 20.0,
    "memory_tasks": [10000, 100000],
    "names": [20, 200],
    "settle": 10.0,
    "alert_profile": "standard",
    "warmup": 60.0,
    "alert_rate": 10.0,
    "fleet_workers": [10, 100, 1000],
    "fleet_rate": 200.0,
    "fleet_seconds": 30.0,
    "fleet_names": 1000,
    "fleet_queues": 50,
    "prefetch_settings": [1, 2, 4],
    "long_tasks": 10,
    "long_seconds": 10.0,
    "profile_tasks": 10000,
}
QUICK = {
    "tasks": 300,
    "cpu_tasks": 40,
    "rounds": 1,
    "capacity_rates": [50, 100],
    "step_seconds": 3.0,
    "memory_tasks": [200, 400],
    "names": [3, 6],
    "settle": 1.0,
    "alert_profile": "fast",
    "warmup": 10.0,
    "alert_rate": 10.0,
    "fleet_workers": [10, 100],
    "fleet_rate": 50.0,
    "fleet_seconds": 4.0,
    "fleet_names": 20,
    "fleet_queues": 5,
    "prefetch_settings": [1, 4],
    "long_tasks": 4,
    "long_seconds": 1.0,
    "profile_tasks": 300,
}


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"bench: error: {message}\n")  # one line, naming the value


def _int(low, high=None):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if v < low or (high is not None and v > high):
            raise argparse.ArgumentTypeError(
                f"must be {'>= %d' % low if high is None else f'between {low} and {high}'}, got {v}"
            )
        return v

    return parse


def _float(low):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not v > low:
            raise argparse.ArgumentTypeError(f"must be > {low:g}, got {text}")
        return v

    return parse


def _list(item, choices=None, increasing=False):
    def parse(text):
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"must be a comma-separated list, got {text!r}")
        if choices:
            bad = [v for v in values if v not in choices]
            if bad:
                raise argparse.ArgumentTypeError(f"unknown {bad[0]!r} (choose from {', '.join(choices)})")
            return values
        out = [item(v) for v in values]
        if increasing and out != sorted(set(out)):
            raise argparse.ArgumentTypeError(f"must be increasing, got {text!r}")
        return out

    return parse


def _conf(text):
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"must be SETTING=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def _variant(text):
    from bench.configs import variant

    try:
        return variant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _out(suffix=None):
    def parse(text):
        parent = os.path.dirname(os.path.abspath(text))
        if not os.path.isdir(parent):
            raise argparse.ArgumentTypeError(f"directory {parent!r} does not exist (for {text!r})")
        if suffix and not text.lower().endswith(suffix):
            raise argparse.ArgumentTypeError(f"must end with {suffix}, got {text!r}")
        return text

    return parse


def _dir(text):
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"directory {text!r} does not exist")
    return text


def build_parser():
    p = Parser(prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (not figures)")
    p.add_argument(
        "--sections", type=_list(str, SECTIONS), default=list(SECTIONS), help="comma list of " + ",".join(SECTIONS)
    )
    p.add_argument("--tasks", type=_int(1), help=f"trivial tasks per throughput run ({FULL['tasks']})")
    p.add_argument("--cpu-tasks", type=_int(1), help=f"10 ms tasks per throughput run ({FULL['cpu_tasks']})")
    p.add_argument("--rounds", type=_int(1, 50), help=f"interleaved rounds ({FULL['rounds']})")
    p.add_argument(
        "--configs",
        type=_list(str, CONFIG_NAMES),
        default=list(CONFIG_NAMES[:5]),
        help="throughput configurations (bare,events,full,full_wm_off,offshelf; stock = bare with Celery's "
        "defaults, added whenever offshelf runs)",
    )
    p.add_argument("--kinds", type=_list(str, KINDS), default=list(KINDS))
    p.add_argument("--capacity-rates", type=_list(_int(1), increasing=True), help="tasks/s steps (200,400,...,1600)")
    p.add_argument("--step-seconds", type=_float(0), help=f"seconds per capacity step ({FULL['step_seconds']:g})")
    p.add_argument("--memory-tasks", type=_list(_int(1), increasing=True), help="cumulative points (10000,100000)")
    p.add_argument("--names", type=_list(_int(1, 1000)), help="task-name counts (20,200)")
    p.add_argument("--settle", type=_float(-1), help="seconds after catch-up before reading memory (10)")
    p.add_argument(
        "--fleet-workers", type=_list(_int(1, 5000), increasing=True), help="simulated worker counts (10,100,1000)"
    )
    p.add_argument("--fleet-rate", type=_float(0), help=f"fleet: simulated tasks/s ({FULL['fleet_rate']:g})")
    p.add_argument(
        "--fleet-seconds",
        type=_float(0),
        help=f"fleet: seconds of traffic per worker count ({FULL['fleet_seconds']:g})",
    )
    p.add_argument("--fleet-names", type=_int(1, 1000), help=f"fleet: task names ({FULL['fleet_names']})")
    p.add_argument("--fleet-queues", type=_int(1, 50), help=f"fleet: queues ({FULL['fleet_queues']})")
    p.add_argument(
        "--prefetch-settings",
        type=_list(_int(1, 64), increasing=True),
        help="prefetch: worker_prefetch_multiplier values (1,2,4)",
    )
    p.add_argument("--long-tasks", type=_int(1, 200), help=f"prefetch: long tasks per scenario ({FULL['long_tasks']})")
    p.add_argument("--long-seconds", type=_float(0), help=f"prefetch: seconds per long task ({FULL['long_seconds']:g})")
    p.add_argument("--profile-tasks", type=_int(1), help=f"profile: trivial tasks ({FULL['profile_tasks']})")
    p.add_argument(
        "--profile-dir", type=_out(), help="profile: directory for py-spy's profiles (.native/bench/profiles)"
    )
    p.add_argument(
        "--alert-profile",
        choices=["standard", "fast"],
        help="the mixin's alerting profile: real rules (for: 2m) or the live tests' fast one",
    )
    p.add_argument("--warmup", type=_float(0), help="alert section: seconds of healthy traffic first (60)")
    p.add_argument("--alert-rate", type=_float(0), help="alert section: tasks/s (10)")
    p.add_argument("--cold-start", action="store_true", help="time `python -m native up` (needs the stack stopped)")
    p.add_argument(
        "--conf",
        type=_conf,
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="override a Celery setting of the bench worker and publisher (tuning experiments)",
    )
    p.add_argument(
        "--variant",
        type=_variant,
        action="append",
        default=[],
        metavar="NAME:SETTING=VALUE[,...]",
        help="add the configuration full+NAME, interleaved and paired like the others: " + SPEC_HELP,
    )
    p.add_argument(
        "--loglevel",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="bench worker log level (the native stack runs INFO)",
    )
    p.add_argument("--json", type=_out(), help="write every figure as JSON here (always also .native/bench/last.json)")
    p.add_argument("--chart", type=_out(".svg"), help="write the throughput chart (SVG) here")
    p.add_argument("--charts", type=_dir, help="write every chart (performance-*.svg) into this directory")
    return p


def resolve(parser, args):
    base = QUICK if args.quick else FULL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if "throughput" in args.sections and "bare" not in args.configs:
        parser.error("argument --configs: must include bare (ratios are to bare)")
    from bench.configs import CONFIGS, baseline_for, with_baselines

    for config in args.variant:
        CONFIGS[config.name] = config
        CONFIGS.setdefault(config.baseline, baseline_for(config))
        args.configs.append(config.name)
    args.configs = with_baselines(args.configs)
    return args


def machine():
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores {model}, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def versions(mgmt, auth):
    from importlib.metadata import version

    import requests

    out = {p: version(p) for p in ("celery", "kombu", "flower")}
    try:
        out["rabbitmq"] = requests.get(f"{mgmt}/overview", auth=auth, timeout=5).json()["rabbitmq_version"]
    except Exception:
        out["rabbitmq"] = None
    return out


def meta(args, argv, bench):
    """What the run was: command, machine, versions, load before it, the bundle's settings, sizes."""
    from bench import measure, state, tasks
    import worker.flowerconfig as flowerconfig

    conf = tasks.app.conf
    settings = (
        "task_acks_late",
        "worker_prefetch_multiplier",
        "worker_concurrency",
        "event_queue_ttl",
        "event_queue_expires",
        "task_track_started",
    )
    return {
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
        "versions": versions(state.MGMT, bench.auth),
        "background_load": measure.background_load(),
        "conf": dict(args.conf),
        "worker_loglevel": args.loglevel,
        "bundle_settings": {k: conf[k] for k in settings},
        "flower_max_tasks": int(bench.env.get("FLOWER_MAX_TASKS") or flowerconfig.max_tasks),
        "sizes": {k: getattr(args, k) for k in FULL},
    }


def section_runners(args, bench, say):
    """Each section, as a call."""
    from bench import capacity, coldstart, fleet, latency, memory, prefetch, profile, state, throughput

    sizes = {"trivial": args.tasks, "cpu10": args.cpu_tasks}
    fleet_args = (args.fleet_workers, args.fleet_rate, args.fleet_seconds, args.fleet_names, args.fleet_queues)
    return {
        "throughput": lambda: throughput.run(bench, args.configs, args.kinds, sizes, args.rounds, say),
        "prefetch": lambda: prefetch.run(
            bench, args.prefetch_settings, args.kinds, sizes, args.rounds, args.long_tasks, args.long_seconds, say
        ),
        "profile": lambda: profile.run(bench, args.profile_tasks, args.profile_dir or state.STATE / "profiles", say),
        "capacity": lambda: capacity.run(bench, args.capacity_rates, args.step_seconds, say),
        "memory": lambda: memory.run(bench, args.memory_tasks, args.names, args.settle, say),
        "fleet": lambda: fleet.run(bench, *fleet_args, max(args.settle, 6.0), say),
        "alerts": lambda: latency.run(bench, args.alert_profile, args.warmup, args.alert_rate, say),
        "coldstart": lambda: coldstart.run(args.cold_start, say, bench.outer_env),
    }


def run_section(name, runner, say):
    """(result, ok): one broken section must not lose the others."""
    from bench import state

    t = time.monotonic()
    ok = True
    try:
        result = runner()
    except state.BenchError as exc:
        say(f"bench: {name} failed: {exc}")
        result, ok = {"error": str(exc)}, False
    except Exception as exc:  # noqa: BLE001
        with open(state.LOGS / "bench-errors.log", "a") as log:
            traceback.print_exc(file=log)
        say(f"bench: {name} failed: {exc!r} (traceback in {state.LOGS / 'bench-errors.log'})")
        result, ok = {"error": repr(exc)}, False
    if isinstance(result, dict):
        result["section_seconds"] = round(time.monotonic() - t, 1)
    return result, ok


def write_outputs(args, results, console, say):
    """Print every figure, write the JSON files and charts; 1 if a chart failed."""
    from bench import goals, report, state

    ok = {k: v for k, v in results.items() if not (isinstance(v, dict) and "error" in v)}
    report.print_all(ok, console)
    rows = goals.evaluate(ok)
    if rows:  # only sections with goals (throughput) give figures to judge
        results["goals"] = rows
    report.write_json(results, state.STATE / "last.json")
    if args.json:
        report.write_json(results, args.json)
    note = "SMOKE (--quick): not figures" if args.quick else ""
    try:
        if args.chart and "throughput" in ok:
            report.write_chart(ok["throughput"], args.chart, note=note)
            say(f"chart: {args.chart}")
        for path in report.write_charts(ok, args.charts, note=note) if args.charts else ():
            say(f"chart: {path}")
    except Exception as exc:  # noqa: BLE001  the figures are printed and saved already; charts are extra
        say(f"bench: could not render the charts: {exc}")
        return 1
    return 0


def main(argv=None):
    parser = build_parser()
    args = resolve(parser, parser.parse_args(argv))
    console = Console(width=None if sys.stdout.isatty() else 150)  # wide tables in logs and pipes
    say = lambda m: console.print(m, markup=False, highlight=False)  # noqa: E731

    from bench import stack, state

    results = {}
    exit_code = 0
    try:
        with stack.Bench(say, loglevel=args.loglevel, conf=dict(args.conf)) as bench:
            results["meta"] = meta(args, argv, bench)
            if results["meta"]["background_load"] > 0.15:
                say(
                    f"warning: {results['meta']['background_load']:.0%} of the CPU is busy before the bench starts; "
                    "the bench is CPU-bound, so its figures will be skewed"
                )
            runners = section_runners(args, bench, say)
            for name in SECTIONS:
                if name in args.sections:
                    results[name], ok = run_section(name, runners[name], say)
                    exit_code = exit_code if ok else 1
    except state.BenchError as exc:
        say(f"bench: error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("bench: interrupted; every bench process was stopped")
        exit_code = 130
    if "meta" not in results:
        return exit_code
    return write_outputs(args, results, console, say) or exit_code


if __name__ == "__main__":
    sys.exit(main())
