"""worker/flower_metrics.py: Flower's metrics per worker and its cheaper event handling, driven by
Flower's own code (its PrometheusMetrics methods, its Events and EventsState, its search engine, its
config-file loader), and the copy the Helm chart mounts."""

import asyncio
import subprocess
import sys
import textwrap
import threading
import time

import flower.events
import flower.utils.search
from celery import Celery
from prometheus_client import CollectorRegistry
from tornado.ioloop import IOLoop

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
    # The worker comes back: its series start again from 0, not from a child kept since.
    feed(metrics, ["w1@h"], ["a"])
    events = {
        (s.labels["worker"], s.labels["type"]): s.value for s in samples(registry) if s.name == "flower_events_total"
    }
    assert events[("w1@h", "task-succeeded")] == 1 and events[("w2@h", "task-succeeded")] == 1


def task_events(count, start=0, worker="w1@h"):
    """Celery task events as a worker sends them: received (with arguments), started, succeeded."""
    now, events = time.time(), []
    for i in range(start, start + count):
        uuid, base = f"task-{i}", {"hostname": worker, "local_received": now, "clock": 3 * i}
        events += [
            {**base, "type": "task-received", "uuid": uuid, "timestamp": now, "name": "process_task",
             "args": f"({i},)", "kwargs": f"{{'user': 'u{i}', 'timeout': 0}}"},
            {**base, "type": "task-started", "uuid": uuid, "timestamp": now + 0.1, "clock": 3 * i + 1},
            {**base, "type": "task-succeeded", "uuid": uuid, "timestamp": now + 0.2, "clock": 3 * i + 2,
             "runtime": 0.1, "result": f"'done {i}'"},
        ]  # fmt: skip
    return events


def test_flower_applies_a_burst_of_events_in_order_with_one_wakeup():
    class Events(flower.events.Events):
        pass

    flower_metrics.batch_event_intake(Events)

    async def scenario():
        loop = IOLoop.current()
        events = Events(Celery(set_as_current=False), loop, max_tasks_in_memory=1000)
        applied, wakeups, add_callback = [], [], loop.add_callback
        events.state.event = lambda event: applied.append(event["clock"])
        loop.add_callback = lambda *a, **k: (wakeups.append(1), add_callback(*a, **k))
        for burst in range(2):
            sent = task_events(100, start=100 * burst)
            # Flower's receiving thread hands them over while the IO loop is busy elsewhere.
            feeder = threading.Thread(target=lambda: [events.on_event(e) for e in sent])
            feeder.start()
            feeder.join()
            assert len(wakeups) == burst + 1 and len(applied) == 300 * burst
            while len(applied) < 300 * (burst + 1):
                await asyncio.sleep(0.01)
        assert applied == list(range(600))  # every event, in the order received
        assert len(wakeups) == 2

    asyncio.run(asyncio.wait_for(scenario(), 30))


class SearchEngine(flower.utils.search.TaskSearchEngine):
    pass


class DeferredState(flower.events.EventsState):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.search_engine = SearchEngine()
        self.search_engine.rebuild(self.tasks.items())


flower_metrics.index_on_search(DeferredState, SearchEngine)


def test_flowers_task_search_answers_as_before_while_indexing_only_when_read():
    """The same events into Flower's own state and into one whose index is built when read: every
    listing and search gives the same tasks, with tasks evicted at max_tasks and changed since."""
    plain, deferred = flower.events.EventsState(max_tasks_in_memory=50), DeferredState(max_tasks_in_memory=50)
    queries = ["", "u17", "u45", "kwargs:user=u60", "state:SUCCESS", "args:62,", "name:process_task"]

    def pages():
        return [
            (q, state.search_engine.search(state.tasks, q, sort_by="name", limit=200).task_ids)
            for state in (plain, deferred)
            for q in queries
        ]

    answers = []
    for start, count in ((0, 40), (40, 30)):  # the second batch evicts the first 20
        for event in task_events(count, start):
            plain.event(event)
            deferred.event(event)
        assert len(deferred.search_engine.documents) < count  # nothing indexed until read
        found = pages()
        half = len(found) // 2
        assert found[:half] == found[half:], "the deferred index answers differently"
        answers.append(dict(found[:half]))
    assert answers[0]["u17"] == ["task-17"] and answers[1]["u17"] == []  # evicted
    assert answers[1]["kwargs:user=u60"] == ["task-60"] and answers[1]["u45"] == ["task-45"]
    assert len(answers[1][""]) == 50
    # A task that changed since the last listing is found by its new state.
    deferred.event({**task_events(1, 200)[0]})
    assert "task-200" not in deferred.search_engine.search(deferred.tasks, "state:SUCCESS").task_ids
    assert "task-200" in deferred.search_engine.search(deferred.tasks, "state:RECEIVED").task_ids


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
