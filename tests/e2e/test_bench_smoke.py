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
pytestmark = [pytest.mark.bench, pytest.mark.heavy]

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The smoke run covers every section but the fleet (its own test below) on the trivial task kind
# (the 10 ms kind runs the same code with another task), to stay within a few minutes.
SMOKE = ["--quick", "--sections", "throughput,capacity,memory,alerts,coldstart", "--kinds", "trivial"]
PRINTED = [
    "Throughput, trivial task",
    "CPU seconds per 1,000 tasks",
    "full bundle / bare, trivial task",
    "our worker metrics",
    "worker metrics collector",
    "What monitoring adds, trivial task",
    "monitoring CPU per trivial task",
    "the bundle's monitoring costs",
    "Pipeline capacity steps",
    "pipeline capacity:",
    "Monitor memory",
    "alert latency (CelerySuccessRateLow, fast profile)",
    "cold start:",
]
PER_CONFIG = {
    "rate",
    "ratio_to_bare",
    "cpu_s_per_1000",
    "catch_up_s",
    "events_lost",
    "noisy_runs",
    "monitoring_ms_per_task",
    "worker_ms_per_task_over_bare",
    "events_lost_pct",
}
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
    marks = ("bench.tasks", "bench.publish", str(ROOT / ".native" / "bench"), "--port=19808")
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if any(m in cmdline for m in marks):
            found.append((proc.info["pid"], cmdline))
    return found


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
    assert set(data) == {"meta", "throughput", "capacity", "memory", "alerts", "coldstart"}
    assert data["meta"]["quick"] is True
    assert {"command", "machine", "versions", "background_load", "bundle_settings", "flower_max_tasks", "sizes"} <= set(
        data["meta"]
    )

    t = data["throughput"]
    assert set(t["kinds"]) == {"trivial"}
    for kind in t["kinds"].values():
        assert set(kind["configs"]) == {"bare", "events", "full", "full_wm_off", "offshelf"}
        for name, row in kind["configs"].items():
            assert PER_CONFIG <= set(row), name
            assert row["rate"]["median"] > 0 and row["ratio_to_bare"]["median"] > 0
            assert PROCESSES <= set(row["cpu_s_per_1000"])
            assert row["cpu_s_per_1000"]["worker"] > 0
            if name.startswith("full") or name == "offshelf":
                assert row["cpu_s_per_1000"]["flower"] > 0 and row["cpu_s_per_1000"]["exporter"] > 0
                assert set(row["events_lost_pct"]) == {"flower", "exporter"}
            if name.startswith("full"):
                assert row["events_lost"] == 0  # tiny runs never fall 60 s behind
                assert row["events_lost_pct"]["flower"]["max"] == 0
        assert kind["worker_metrics"]["ratio_on_to_off"]["median"] > 0
        assert kind["worker_metrics"]["worker_cpu_s_per_1000_on_minus_off"] is not None
    assert t["collector_ms_per_scrape"] >= 0 and "collector_core_share_at_5s" in t

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


def check_fleet(f, workers):
    assert [p["workers"] for p in f["points"]] == sorted(workers)
    for p in f["points"]:
        assert p["tasks"] > 0 and p["events"] > 4 * p["tasks"]
        for monitor in ("flower", "exporter"):
            assert FLEET_MONITOR <= set(p[monitor]), monitor
            assert p[monitor]["rss_mb"] > 0 and p[monitor]["samples"] > 0
        # Every simulated worker reached both monitors (a heartbeat or task per worker at least).
        assert p["flower"]["label_values"].get("worker", 0) >= p["workers"]
        assert p["prometheus"]["head_series"] > 0


def test_quick_fleet_section_alone(rabbitmq, tmp_path):
    out = tmp_path / "fleet.json"
    r = bench("--quick", "--sections", "fleet", "--fleet-workers", "10,100", "--json", str(out), timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "Fleet simulation" in r.stdout and "label values at" in r.stdout
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
    ],
)
def test_bad_options_end_with_one_line_naming_the_value(argv, named):
    r = bench(*argv)
    assert r.returncode == 2
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1 and named in r.stderr, r.stderr
