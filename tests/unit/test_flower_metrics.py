"""worker/flower_metrics.py: Flower's metrics per worker, driven by Flower's own code (its
PrometheusMetrics methods, its config-file loader), and the copy the Helm chart mounts."""

import subprocess
import sys
import textwrap

import flower.events
from prometheus_client import CollectorRegistry

from native import paths
from worker import flower_metrics

CHART_FLOWERCONFIG = paths.REPO / "charts" / "celery-observability" / "files" / "flowerconfig.py"


class Task:
    """What Flower's observe_task reads of a task from its state."""

    eta, received, started, name = None, 100.0, 102.5, "process_task"


def feed(metrics, workers, names):
    for worker in workers:
        for name in names:
            for kind in ("task-received", "task-started", "task-succeeded"):
                event = {"type": kind, "name": name, **({"runtime": 0.2} if kind == "task-succeeded" else {})}
                metrics.observe_task(worker, event, Task)
        metrics.observe_worker(worker, {"type": "worker-heartbeat", "active": 1})


def samples(registry):
    return [s for family in registry.collect() for s in family.samples]


def test_series_grow_with_workers_not_with_task_names():
    registry = CollectorRegistry()
    metrics = flower_metrics.per_worker_metrics(flower.events.PrometheusMetrics, registry)
    feed(metrics, ["w1@h", "w2@h"], [f"task_{i}" for i in range(50)])
    found = [s for s in samples(registry) if not s.name.endswith("_created")]
    assert not any("task" in s.labels for s in found)
    assert not any(s.name.startswith("flower_task_runtime_seconds") for s in found)
    events = {(s.labels["worker"], s.labels["type"]): s.value for s in found if s.name == "flower_events_total"}
    assert events[("w1@h", "task-succeeded")] == 50 and len(events) == 6  # 2 workers x 3 event types
    # 2 workers x (3 event types + prefetch time + prefetched + online + executing)
    assert len(found) == 2 * 7
    prefetched = {s.labels["worker"]: s.value for s in found if s.name == "flower_worker_prefetched_tasks"}
    assert prefetched == {"w1@h": 0, "w2@h": 0}  # received, then started: nothing waits


def test_flower_purges_a_dead_workers_series():
    registry = CollectorRegistry()
    metrics = flower_metrics.per_worker_metrics(flower.events.PrometheusMetrics, registry)
    feed(metrics, ["w1@h", "w2@h"], ["a"])
    assert metrics.remove_workers(["w1@h"]) == 1
    assert {s.labels["worker"] for s in samples(registry) if "worker" in s.labels} == {"w2@h"}


LOAD_CONFIG = """
import os, sys
from tornado.options import options, parse_config_file
import flower.options  # Flower's options, which the file sets
import flower.events
from prometheus_client import REGISTRY, generate_latest
parse_config_file(sys.argv[1], final=False)
m = flower.events.get_prometheus_metrics()
m.observe_task("w@h", {"type": "task-started", "name": "a"}, type("T", (), {"eta": None, "received": 0, "started": 0}))
text = generate_latest(REGISTRY).decode()
print("per-task" if 'task="a"' in text else "per-worker", "created" if "_created" in text else "no-created")
"""


def load_in_flower(config, **env):
    """What Flower's metrics look like after it loaded `config` as its configuration file."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOAD_CONFIG), str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=paths.REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(paths.REPO), **env},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_bundles_flower_configuration_installs_them():
    assert load_in_flower(paths.REPO / "worker" / "flowerconfig.py") == ["per-worker", "no-created"]


def test_per_task_flower_metrics_keeps_flowers_own():
    config = paths.REPO / "worker" / "flowerconfig.py"
    assert load_in_flower(config, PER_TASK_FLOWER_METRICS="1") == ["per-task", "no-created"]


def test_the_charts_copy_runs_on_its_own():
    """The chart mounts the generated copy as Flower's flowerconfig.py, without the bundle's code."""
    text = CHART_FLOWERCONFIG.read_text()
    assert (paths.REPO / "worker" / "flower_metrics.py").read_text() in text and "from worker" not in text
    assert load_in_flower(CHART_FLOWERCONFIG) == ["per-worker", "no-created"]
