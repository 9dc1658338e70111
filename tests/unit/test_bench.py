"""The bench's pure parts: variant specs, the port map onto native's services, the summary
arithmetic, the simulator's event stream and the charts. No timing is asserted anywhere."""

import subprocess
import sys
import xml.dom.minidom

import pytest
import yaml

from bench import configs, fleet, goals, latency, profile, report, routes, state, throughput, timeline
from bench.__main__ import build_parser, resolve
from mixin.durations import seconds
from native import derive, paths, services
from native.ports import PORTS


def test_variant_spec_routes_each_key_to_its_component():
    c = configs.variant(
        "lean:event_serializer=msgpack,flower.enable_events=false,exporter.worker-timeout=60,"
        "worker.without-gossip=true,worker.heartbeat-interval=10,scrape=15s,nice=5"
    )
    assert c.worker_args == ("--without-gossip", "--heartbeat-interval=10")
    assert c.name == "full+lean" and c.monitors and c.events and c.worker_metrics
    assert c.conf == (("event_serializer", "msgpack"),)
    assert c.flower_args == ("--enable_events=false",)
    assert c.exporter_args == ("--worker-timeout=60",)
    assert c.scrape_interval == "15s" and c.nice == 5


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nocolon", "NAME:KEY=VALUE"),
        (":a=1", "NAME:KEY=VALUE"),
        ("x:novalue", "NAME:KEY=VALUE"),
        ("x:nice=20", "nice must be 0..19, got '20'"),
        ("x:nice=true", "nice must be 0..19"),
        ("x:scrape=5", "scrape must be a Prometheus duration"),
        ("x:flower.=1", "NAME:KEY=VALUE"),
        ("x:env.=1", "NAME:KEY=VALUE"),
        ("x:env.lower=1", "got 'lower'"),
        (
            "x:env.WORKER_LATENCY_METRICS=maybe",
            "WORKER_LATENCY_METRICS must be one of 1/0/on/off/true/false/yes/no, got 'maybe'",
        ),
    ],
)
def test_bad_variant_specs_name_the_value(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        configs.variant(spec)


def test_cli_rejects_a_bad_variant_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--variant", "x:nice=99"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nice must be 0..19, got '99'" in err


def test_default_run_compares_the_off_the_shelf_setup():
    p = build_parser()
    args = resolve(p, p.parse_args(["--quick"]))
    assert "offshelf" in args.configs and "fleet" in args.sections
    off = configs.CONFIGS["offshelf"]
    # Exactly what the bundle changes from Celery's defaults, put back.
    from worker.celery_app import app

    assert dict(off.conf)["event_queue_ttl"] == 5.0 and dict(off.conf)["worker_prefetch_multiplier"] == 4
    for key, value in off.conf:
        assert app.conf[key] != value, key
    assert off.off_the_shelf and off.events and off.monitors and not off.worker_metrics


@pytest.mark.parametrize(
    "off_the_shelf, dispatcher",
    [("1", "celery.events.dispatcher.EventDispatcher"), ("0", "worker.events.QueueNamingDispatcher")],
)
def test_the_off_the_shelf_worker_sends_events_with_celerys_own_dispatcher(off_the_shelf, dispatcher):
    """The bundle's batching dispatcher (worker/events.py) is the bundle's, not the usual setup's."""
    code = (
        "from bench.tasks import app\n"
        "d = app.events.Dispatcher(app.connection_for_write(), enabled=False)\n"
        "print(type(d).__module__ + '.' + type(d).__qualname__)"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(paths.REPO), "BENCH_OFF_THE_SHELF": off_the_shelf}
    env["RMQ_URL"] = "amqp://guest:guest@127.0.0.1:1/bench"  # never connected
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == dispatcher


def test_bench_runs_native_services_with_the_bench_ports_and_app():
    flower = next(s for s in services.core() if s.name == "flower").argv({})
    exporter = next(s for s in services.core() if s.name == "celery_exporter").argv(
        {"RMQ_URL": "amqp://x/bench", "BROKER_URL": "amqp://x/bench"}
    )
    assert state.bench_argv(flower)[2] == "bench.tasks"
    assert f"--port={state.PORTS['exporter']}" in state.bench_argv(exporter)
    assert state.bench_target(f"127.0.0.1:{PORTS['prometheus']}") == f"127.0.0.1:{state.PORTS['prometheus']}"
    assert state.bench_target(f"127.0.0.1:{derive.worker_port(1)}") == f"127.0.0.1:{state.PORTS['worker_metrics']}"
    shared = f"127.0.0.1:{PORTS['rabbitmq_prometheus']}"
    assert state.bench_target(shared) == shared  # the shared broker's
    assert not set(state.PORT_MAP) & set(state.PORT_MAP.values())


def _run(config, r, rate, worker, flower=0.0, counted=None, tasks=1000):
    cpu = {"worker": worker, "broker": 0.5, "publisher": 0.5, "other": 0.0}
    if flower:
        cpu.update(flower=flower, exporter=flower, prometheus=0.01)
    run = {"config": config, "kind": "trivial", "tasks": tasks, "rate": rate, "round": r, "cpu": cpu}
    if counted is not None:
        run["events_counted"] = {"flower": counted, "exporter": counted}
    return run


def test_summary_pairs_each_configuration_with_the_bare_run_of_its_celery_settings():
    runs = [
        _run("bare", 1, 1000, 1.0),
        _run("stock", 1, 1250, 0.8),
        _run("full", 1, 400, 1.5, flower=1.0, counted=1000),
        _run("offshelf", 1, 500, 1.4, flower=0.5, counted=900),
    ]
    names = ["bare", "stock", "full", "offshelf"]
    out = throughput.summarize(runs, names, ["trivial"], {"trivial": 1000}, 1)
    k = out["kinds"]["trivial"]
    full, off = k["configs"]["full"], k["configs"]["offshelf"]
    assert (full["baseline"], off["baseline"]) == ("bare", "stock")
    assert full["ratio_to_baseline"]["median"] == pytest.approx(0.4)
    assert off["ratio_to_baseline"]["median"] == pytest.approx(0.4) and off["ratio_to_bare"]["median"] == 0.5
    # bare total 2.0 s per 1,000; full 1.5+1+1+1+0.01 = 4.51 -> +2.51 ms per task
    assert full["monitoring_ms_per_task"]["median"] == pytest.approx(2.51)
    assert full["worker_ms_per_task_over_baseline"]["median"] == pytest.approx(0.5)
    # stock total 1.8; offshelf 1.4+1+0.5+0.5+0.01 = 3.41 -> +1.61, not +1.41 as against bare
    assert off["monitoring_ms_per_task"]["median"] == pytest.approx(1.61)
    assert off["worker_ms_per_task_over_baseline"]["median"] == pytest.approx(0.6)
    assert off["events_lost_pct"]["flower"]["median"] == pytest.approx(10.0)
    assert full["events_lost_pct"]["exporter"]["median"] == 0
    assert k["monitoring_cost_to_offshelf"]["full"] == pytest.approx(2.51 / 1.61)
    assert "monitoring_ms_per_task" not in k["configs"]["stock"]  # a baseline has no cost of its own
    rel = k["reliability"]  # bare against stock: what late acks and prefetch 1 cost
    assert rel["ratio"]["median"] == pytest.approx(0.8)
    assert rel["cpu_ms_per_task"]["median"] == pytest.approx(0.2)


def test_offshelf_brings_its_baseline_with_equal_celery_settings():
    p = build_parser()
    args = resolve(p, p.parse_args(["--quick", "--configs", "bare,full,offshelf"]))
    assert args.configs == ["bare", "stock", "full", "offshelf"]
    off, stock = configs.CONFIGS["offshelf"], configs.CONFIGS["stock"]
    assert off.baseline == "stock" and dict(off.conf) == dict(stock.conf)
    assert not stock.events and not stock.monitors and stock.is_baseline


def test_a_variant_changing_reliability_settings_is_paired_with_a_bare_run_of_them():
    v = configs.variant("p4:worker_prefetch_multiplier=4,event_serializer=msgpack")
    assert v.baseline == "bare+p4"
    base = configs.baseline_for(v)
    assert base.conf == (("worker_prefetch_multiplier", 4),) and not base.events and base.is_baseline
    assert configs.variant("ms:event_serializer=msgpack").baseline == "bare"
    defaults = (
        "task_acks_late=false,task_reject_on_worker_lost=null,worker_prefetch_multiplier=4,task_track_started=false"
    )
    assert configs.variant(f"d:{defaults}").baseline == "stock"
    p = build_parser()
    args = resolve(
        p, p.parse_args(["--quick", "--configs", "bare,full", "--variant", "p4:worker_prefetch_multiplier=4"])
    )
    assert args.configs == ["bare", "bare+p4", "full", "full+p4"]


def test_env_variant_key_sets_the_workers_environment():
    v = configs.variant("nolat:env.WORKER_LATENCY_METRICS=0")
    assert v.worker_env == (("WORKER_LATENCY_METRICS", "0"),) and v.baseline == "bare" and v.conf == ()


def test_simulated_fleet_sends_a_full_task_lifecycle_per_task():
    sent = []
    f = fleet.Fleet(app=None, workers=10, names=3, queues=2)
    for i in range(100):
        f._task(lambda host, type_, **fields: sent.append((host, type_, fields)), i)
    types = [t for _, t, _ in sent]
    assert types.count("task-sent") == 100 and types.count("task-started") == 100
    assert types.count("task-succeeded") + types.count("task-failed") == 100
    assert 0 < types.count("task-failed") < 10
    assert {h for h, t, _ in sent if t == "task-started"} == set(f.hosts)
    assert {fields["queue"] for _, t, fields in sent if t == "task-sent"} == set(f.queues)
    assert {fields["name"] for _, t, fields in sent if t == "task-sent"} == set(f.names)
    assert all(fields["runtime"] >= 0 for _, t, fields in sent if t == "task-succeeded")
    # One uuid per task, shared by its four events.
    assert len({fields["uuid"] for _, _, fields in sent}) == 100


def test_series_by_label_counts_label_values():
    text = '# TYPE x counter\nx_total{hostname="a",name="t1"} 1\nx_total{hostname="b",name="t1"} 2\ny{queue="q"} 3\n'
    count, labels = fleet.series_by_label(text)
    assert count == 3 and labels == {"hostname": 2, "name": 1, "queue": 1}


def _results():
    runs = [_run("bare", 1, 1000, 1.0), _run("full", 1, 400, 1.5, flower=1.0, counted=1000)]
    t = throughput.summarize(runs, ["bare", "full"], ["trivial"], {"trivial": 1000}, 1)
    point = {
        "workers": 10,
        "flower": {"cpu_cores": 0.1, "rss_mb": 50},
        "exporter": {"cpu_cores": 0.2, "rss_mb": 60},
        "prometheus": {"cpu_cores": 0.01, "rss_mb": 40},
    }
    f = {"task_rate": 10, "names": 3, "queues": 2, "points": [point, {**point, "workers": 100}]}
    return {"throughput": t, "fleet": f}


def test_charts_are_well_formed_svg(tmp_path):
    paths = report.write_charts(_results(), str(tmp_path))
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == [
        "performance-cpu-trivial.svg",
        "performance-fleet.svg",
        "performance-throughput.svg",
    ]
    for p in paths:
        doc = xml.dom.minidom.parse(p)
        assert doc.documentElement.tagName == "svg"
        assert doc.getElementsByTagName("rect").length >= 3  # background + bars or legend


def test_report_does_not_import_tests():
    import ast
    import pathlib

    for path in pathlib.Path(report.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "tests" or n.startswith("tests.") for n in names), path


def test_alert_latency_bound_reads_the_route_alertmanager_takes():
    rules = yaml.safe_load((paths.REPO / "alerts" / "celery.rules.yml").read_text())
    rule = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == latency.ALERT)
    am = yaml.safe_load((paths.REPO / "alertmanager" / "alertmanager.yml").read_text())
    parts = latency.bound(rules)
    route = routes.route(am["route"], {"alertname": latency.ALERT, **rule["labels"]})
    assert parts["group_wait_s"] == seconds(route["group_wait"]) and parts["for_s"] == seconds(rule["for"])
    assert parts["bound_s"] == sum(v for k, v in parts.items() if k != "bound_s")


def _timeline(assignments, seconds=10.0, ready=(("a", 0.0), ("b", 0.0))):
    """Records of tasks given as (worker, received, started): each runs `seconds`."""
    records = [{"event": "ready", "worker": w, "t": t} for w, t in ready]
    for i, (worker, received, started) in enumerate(assignments):
        records += [
            {"event": "received", "worker": worker, "id": str(i), "t": received},
            {"event": "started", "worker": worker, "id": str(i), "t": started},
            {"event": "finished", "id": str(i), "t": started + seconds},
        ]
    return records


def test_timeline_finds_a_worker_idle_while_another_holds_prefetched_tasks():
    # Prefetch 4 on a backlog: worker a took all 6 tasks (2 processes), b got none.
    records = _timeline([("a", 0, 0), ("a", 0, 0), ("a", 0, 10), ("a", 0, 10), ("a", 0, 20), ("a", 0, 20)])
    a = timeline.analyze(records, {"a": 2, "b": 2}, 10.0)
    assert a["per_worker"] == {"a": 6, "b": 0}
    assert a["makespan_s"] == 30 and a["ideal_s"] == 20 and a["makespan_to_ideal"] == 1.5
    # b's 2 processes idle for 20 s while a held 4, then 2 tasks (each process against one task).
    assert a["idle_while_held_s"] == pytest.approx(2 * (10 - timeline.GRACE_S) + 2 * 10)
    assert a["unfair"]


def test_timeline_of_a_fair_spread_has_no_idle_time_against_held_tasks():
    # Prefetch 1: each worker runs 2, the 2 left wait in the broker and go to whichever frees first.
    records = _timeline([("a", 0, 0), ("a", 0, 0), ("b", 0.1, 0.1), ("b", 0.1, 0.1), ("a", 10, 10), ("b", 10.1, 10.1)])
    a = timeline.analyze(records, {"a": 2, "b": 2}, 10.0)
    assert a["per_worker"] == {"a": 3, "b": 3} and a["idle_while_held_s"] == 0 and not a["unfair"]
    # Only the tasks received since a moment count (the burst after the backlog on the same workers).
    later = timeline.analyze(records, {"a": 2, "b": 2}, 10.0, since=5)
    assert later["tasks"] == 2 and later["ideal_s"] == 10


def test_profile_reads_collapsed_stacks_into_own_and_total_time():
    text = (
        "<module> (/x/celery/bin/celery.py);loop (/x/lib/python3.11/site-packages/kombu/asynchronous/hub.py) 70\n"
        "<module> (/x/celery/bin/celery.py);loop (/x/lib/python3.11/site-packages/kombu/asynchronous/hub.py);"
        "send (/x/lib/python3.11/site-packages/celery/events/dispatcher.py) 30\n"
    )
    samples, own, total, callees = profile.parse(text)
    assert samples == 100
    assert own["send (celery/events/dispatcher.py)"] == 30 and own["loop (kombu/asynchronous/hub.py)"] == 70
    assert total["loop (kombu/asynchronous/hub.py)"] == 100 and total["send (celery/events/dispatcher.py)"] == 30
    # <module> only calls loop: a pass-through frame; loop divides its time between itself and send.
    assert profile.passes_through(callees["<module> (/x/celery/bin/celery.py)"])
    assert not profile.passes_through(callees["loop (kombu/asynchronous/hub.py)"])


def test_goals_say_met_or_not_with_their_number():
    runs = [
        _run("bare", 1, 1000, 1.0),
        _run("stock", 1, 1250, 0.8),
        _run("full", 1, 600, 1.2, flower=0.3, counted=1000),
        _run("offshelf", 1, 500, 1.4, flower=0.5, counted=1000),
    ]
    t = throughput.summarize(runs, ["bare", "stock", "full", "offshelf"], ["trivial"], {"trivial": 1000}, 1)
    t["exporter_scrape"] = {"workers": 3, "median_s": 0.150}
    rows = {g["goal"].split(" <=")[0].split(" >=")[0]: g for g in goals.evaluate({"throughput": t})}
    # full: 1.2+1+0.3+0.3+0.01 = 2.81 against bare's 2.0 -> 0.81 ms; offshelf 3.41 - 1.8 = 1.61 ms
    assert (
        rows["monitoring CPU per trivial task"]["met"] and rows["monitoring CPU per trivial task"]["shown"] == "0.81 ms"
    )
    assert rows["full bundle"]["met"] and rows["full bundle"]["value"] == pytest.approx(0.6)
    worker = rows["worker-side cost per trivial task"]  # 1.2 - 1.0 s per 1,000 tasks
    assert worker["met"] and worker["shown"] == "0.20 ms"
    assert rows["monitoring cost"]["value"] == pytest.approx(0.81 / 1.61) and rows["monitoring cost"]["met"]
    assert not rows["exporter /metrics"]["met"] and rows["exporter /metrics"]["shown"] == "150 ms"
