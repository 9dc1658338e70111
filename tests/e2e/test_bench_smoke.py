"""`python -m bench --quick` (make bench with tiny sizes): every section runs, prints its figures and
writes every JSON key; the charts are SVG; no bench process is left behind. Timings are not asserted:
quick sizes measure nothing, this checks the benchmark's code."""

import json
import pathlib
import subprocess
import sys

import psutil
import pytest

# The bench runs its own stack (its ports, its vhost) beside the session's: it needs only RabbitMQ.
pytestmark = pytest.mark.bench

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The smoke run covers every section but the fleet (its own test below) on the trivial task kind
# (the 10 ms kind runs the same code with another task), to stay within a few minutes: no `events`
# configuration (bare's code with events on), prefetch 4 and the per-queue recipe only (prefetch 1
# runs the same code), and a variant that turns the worker's latency metrics off through its
# environment.
SMOKE = [
    "--quick",
    "--sections",
    "throughput,prefetch,profile,capacity,memory,alerts,coldstart",
    "--kinds",
    "trivial",
    "--configs",
    "bare,full,full_wm_off,offshelf",
    "--prefetch-settings",
    "4",
    "--variant",
    "nolat:env.WORKER_LATENCY_METRICS=0",
]
PRINTED = [
    "Throughput, trivial task",
    "CPU seconds per 1,000 tasks",
    "our worker metrics",
    "worker metrics collector",
    "What monitoring adds, trivial task",
    "the bundle's monitoring costs",
    "reliability settings (late acks",
    "the worker's latency metrics (worker/latency.py) cost, full - full+nolat",
    "exporter /metrics with 3 workers",
    "Prefetch: late acks",
    "Long tasks:",
    "py-spy profiles of the full bundle",
    "Goals (medians)",
    "monitoring CPU per trivial task <= 1.5 ms",
    "monitoring cost <= 0.8x off the shelf's, same Celery settings",
    "Pipeline capacity steps",
    "pipeline capacity:",
    "Monitor memory",
    "alert latency (CelerySuccessRateLow, fast profile)",
    "cold start:",
]
PER_CONFIG = {
    "baseline",
    "rate",
    "ratio_to_baseline",
    "ratio_to_bare",
    "cpu_s_per_1000",
    "catch_up_s",
    "events_lost",
    "noisy_runs",
    "events_lost_pct",
}
COST = {"monitoring_ms_per_task", "worker_ms_per_task_over_baseline"}
PAIR = {"ratio", "cpu_ms_per_task", "worker_ms_per_task"}
FLEET_MONITOR = {
    "cpu_cores",
    "cpu_ms_per_event",
    "max_events_per_s_one_core",
    "rss_mb",
    "metrics_bytes",
    "samples",
    "label_values",
    "scrape_s",
    "lag_s",
    "succeeded_counted",
    "events_lost_pct",
}
PROCESSES = {"worker", "broker", "publisher", "flower", "exporter", "prometheus", "other", "total"}
MONITOR_POINT = {"rss_mb", "scrape_s", "prometheus_scrape_s", "samples", "bytes", "caught_up", "scrape_timeout_s"}


def bench(*argv, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def bench_processes():
    """This bench's processes still running: another bench instance (NATIVE_INSTANCE) may run the
    same commands beside it, so each candidate's environment must name this instance."""
    from bench import state
    from native import paths

    marks = ("bench.tasks", "bench.publish", "py-spy", str(state.STATE), f"--port={state.PORTS['exporter']}")
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if not any(m in cmdline for m in marks):
            continue
        try:
            instance = proc.environ().get("NATIVE_INSTANCE", "").strip()
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            instance = paths.INSTANCE  # cannot tell: count it
        if instance == paths.INSTANCE:
            found.append((proc.info["pid"], cmdline))
    return found


@pytest.mark.heavy  # runs the bench: it loads the machine
def test_quick_bench_prints_every_figure_and_writes_every_key(rabbitmq, tmp_path):
    out, chart = tmp_path / "bench.json", tmp_path / "bench.svg"
    r = bench(*SMOKE, "--json", str(out), "--chart", str(chart), "--charts", str(tmp_path), timeout=840)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    for text in PRINTED:
        assert text in r.stdout, f"{text!r} not printed:\n{r.stdout[-4000:]}"
    assert chart.read_text().startswith("<svg")
    assert {p.name for p in tmp_path.glob("*.svg")} == {
        "bench.svg",
        "performance-throughput.svg",
        "performance-cpu-trivial.svg",
    }

    data = json.loads(out.read_text())
    assert set(data) == {
        "meta",
        "throughput",
        "prefetch",
        "profile",
        "capacity",
        "memory",
        "alerts",
        "coldstart",
        "goals",
    }
    assert data["meta"]["quick"] is True
    assert {"command", "machine", "versions", "background_load", "bundle_settings", "flower_max_tasks", "sizes"} <= set(
        data["meta"]
    )
    check_throughput(data["throughput"])
    check_prefetch(data["prefetch"])
    check_profile(data["profile"])
    assert {g["goal"].split(" ")[0] for g in data["goals"]} >= {"monitoring", "full", "worker-side", "exporter"}
    assert all(isinstance(g["met"], bool) and g["value"] is not None for g in data["goals"])

    c = data["capacity"]
    assert {"steps", "capacity_tasks_per_s", "limit_found", "lag_limit_s", "event_queues"} <= set(c)
    assert set(c["event_queues"]) == {"flower", "exporter"}
    for s in c["steps"]:
        assert {"target_rate", "achieved_rate", "worker_lag_s", "event_lag_s", "queues", "kept_up", "why_not"} <= set(s)

    m = data["memory"]
    assert {(p["names"], p["tasks"]) for p in m["points"]} == {(3, 200), (3, 400), (6, 200), (6, 400)}
    for p in m["points"]:
        for monitor in ("flower", "exporter"):
            assert MONITOR_POINT <= set(p[monitor])
            assert p[monitor]["rss_mb"] > 0 and p[monitor]["caught_up"]

    a = data["alerts"]
    assert a["profile"] == "fast" and a["alert"] == "CelerySuccessRateLow"
    assert {"latency_s", "bound_s", "scrape_s", "evaluation_s", "for_s", "group_wait_s", "ratio_to_bound"} <= set(a)
    assert a["latency_s"] > 0

    assert data["coldstart"] == {"skipped": "not requested (--cold-start)", "section_seconds": pytest.approx(0, abs=5)}
    assert bench_processes() == [], "the bench left processes running"


def check_throughput(t):
    assert set(t["kinds"]) == {"trivial"}
    for kind in t["kinds"].values():
        # stock came with offshelf: its baseline
        assert set(kind["configs"]) == {"bare", "stock", "full", "full_wm_off", "offshelf", "full+nolat"}
        for name, row in kind["configs"].items():
            assert PER_CONFIG <= set(row), name
            # offshelf is paired with stock (the same Celery settings), the baselines with themselves
            assert row["baseline"] == {"offshelf": "stock", "stock": "stock"}.get(name, "bare"), name
            assert (COST <= set(row)) == (name not in ("bare", "stock")), name
            assert row["rate"]["median"] > 0 and row["ratio_to_baseline"]["median"] > 0
            assert PROCESSES <= set(row["cpu_s_per_1000"])
            assert row["cpu_s_per_1000"]["worker"] > 0
            if name.startswith("full") or name == "offshelf":
                assert row["cpu_s_per_1000"]["flower"] > 0 and row["cpu_s_per_1000"]["exporter"] > 0
                assert set(row["events_lost_pct"]) == {"flower", "exporter"}
            if name.startswith("full"):
                assert row["events_lost"] == 0  # tiny runs never fall 60 s behind
                assert row["events_lost_pct"]["flower"]["max"] == 0
        assert PAIR <= set(kind["worker_metrics"]) and kind["worker_metrics"]["ratio"]["median"] > 0
        assert PAIR <= set(kind["reliability"]) and kind["reliability"]["ratio"]["median"] > 0
        assert PAIR <= set(kind["variants_vs_full"]["full+nolat"])
        assert set(kind["monitoring_cost_to_offshelf"]) == {"full", "full_wm_off", "offshelf", "full+nolat"}
    assert t["collector_ms_per_scrape"] >= 0 and "collector_core_share_at_5s" in t
    assert t["variant_env"] == {"full+nolat": {"WORKER_LATENCY_METRICS": "0"}}
    scrape = t["exporter_scrape"]
    assert scrape["workers"] == 3 and len(scrape["seconds"]) == 10 and 0 < scrape["best_s"] <= scrape["median_s"]


def check_prefetch(p):
    assert p["settings"] == [4] and set(p["short"]) == {"prefetch4", "per_queue"}
    assert all(row["trivial"]["rate"]["median"] > 0 for row in p["short"].values())
    n, seconds = p["long"]["tasks"], p["long"]["seconds"]
    for name, scenarios in p["long_tasks"].items():
        for scenario in ("backlog", "burst"):
            a = scenarios[scenario]
            # Every task was seen received, started and finished by one of the two long-task workers.
            assert a["tasks"] == n and a["finished"] == n and sum(a["per_worker"].values()) == n, (name, scenario, a)
            assert len(a["per_worker"]) == 2 and a["ideal_s"] == -(-n // 4) * seconds
            assert a["makespan_s"] >= seconds and a["idle_while_held_s"] >= 0 and isinstance(a["unfair"], bool)


def check_profile(prof):
    assert set(prof["components"]) == {"worker", "flower", "exporter", "publisher"}
    for name, c in prof["components"].items():
        assert c["samples"] > 0 and c["top_own"] and c["top_total"], name
        assert pathlib.Path(c["file"]).stat().st_size > 0


def check_fleet(f, workers):
    assert [p["workers"] for p in f["points"]] == sorted(workers)
    for p in f["points"]:
        assert p["tasks"] > 0 and p["events"] > 4 * p["tasks"]
        for monitor in ("flower", "exporter"):
            assert FLEET_MONITOR <= set(p[monitor]), monitor
            assert p[monitor]["rss_mb"] > 0 and p[monitor]["samples"] > 0
        # Every simulated worker reached both monitors (a heartbeat or task per worker at least).
        assert p["flower"]["label_values"].get("worker", 0) >= p["workers"]
        # The bundle's Flower counts per worker: no series per task name (worker/flower_metrics.py).
        assert "task" not in p["flower"]["label_values"]
        check_fleet_prometheus(p)
    assert f["goals"] == {
        "head_series_max": 100_000,
        "scrape_share_max": 0.5,
        "rule_share_max": 0.2,
        "events_lost_pct_max": 0.0,
    }
    assert isinstance(f["goals_met_at_largest"], bool)
    dashboard = f["points"][-1]["dashboard"]
    assert dashboard["panels"] and dashboard["total_s"] > 0 and dashboard["slowest"]["panel"] in dashboard["panels"]
    assert "dashboard" not in f["points"][0]  # the Overview's queries run at the largest point only


def check_fleet_prometheus(p):
    """Head series by job, every scrape against its timeout, every rule group against its interval."""
    pr = p["prometheus"]
    assert pr["head_series"] > 0 and pr["head_series_by_job"]["flower"] > 0
    assert pr["head_series_by_job"]["celery_exporter"] > 0 and "recording rules" in pr["head_series_by_job"]
    assert {"flower", "celery_exporter", "prometheus"} <= set(pr["scrapes"])
    for scrape in pr["scrapes"].values():
        assert scrape["timeout_s"] > 0 and scrape["max_s"] >= 0
    assert {"celery.task.rules", "celery.rules", "celery.alerts"} <= set(pr["rule_groups"])
    for group in pr["rule_groups"].values():
        assert group["interval_s"] > 0 and group["max_s"] >= group["last_s"] >= 0 and group["rules"] > 0
    assert any(what.startswith("scrape flower") for what in p["goals"])
    assert all({"value", "limit", "met"} == set(g) for g in p["goals"].values())


@pytest.mark.heavy
def test_quick_fleet_section_alone(rabbitmq, tmp_path):
    out = tmp_path / "fleet.json"
    r = bench("--quick", "--sections", "fleet", "--fleet-workers", "10,100", "--json", str(out), timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "Fleet simulation" in r.stdout and "label values at" in r.stdout
    assert "fleet N=100: " in r.stdout and "Overview dashboard at N=100" in r.stdout and "head series" in r.stdout
    data = json.loads(out.read_text())
    assert set(data) == {"meta", "fleet"}
    check_fleet(data["fleet"], {10, 100})
    assert bench_processes() == [], "the bench left processes running"


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--fleet-workers", "100,10"], "100,10"),
        (["--variant", "x:nice=99"], "99"),
        (["--tasks", "-3"], "-3"),
        (["--sections", "throughput,nope"], "nope"),
        (["--memory-tasks", "100,10"], "100,10"),
        (["--chart", "out.png"], "out.png"),
        (["--variant", "x:env.WORKER_LATENCY_METRICS=maybe"], "maybe"),
        (["--variant", "x:env.bad-name=1"], "bad-name"),
        (["--prefetch-settings", "4,1"], "4,1"),
        (["--long-seconds", "0"], "0"),
    ],
)
def test_bad_options_end_with_one_line_naming_the_value(argv, named):
    r = bench(*argv)
    assert r.returncode == 2
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1 and named in r.stderr, r.stderr
