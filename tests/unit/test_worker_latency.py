"""Task latency by stage (worker/latency.py): the arithmetic, the publish-time header, the settings,
and Celery's own request pipeline run in this process (memory broker, solo pool), no worker needed."""

import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from celery import Celery
from celery._state import get_current_app
from celery.concurrency.solo import TaskPool
from celery.worker.request import Request, create_request_cls
from kombu import Queue
from prometheus_client import CollectorRegistry

from worker import latency, settings
from worker.latency import LatencyMetrics, QueueLabels, TimedRequest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = "celery_worker-1@host"


# --- Arithmetic ---------------------------------------------------------------------------------


def test_queue_wait_counts_from_publish():
    assert latency.queue_wait(100.0, None, 102.5) == 2.5


def test_queue_wait_of_an_eta_task_counts_from_its_due_time():
    # Published at 100 with countdown 30, started at 131: it waited 1 s, not 31.
    assert latency.queue_wait(100.0, 130.0, 131.0) == pytest.approx(1.0)
    # An ETA already past at publish changes nothing.
    assert latency.queue_wait(100.0, 90.0, 101.0) == pytest.approx(1.0)


def test_queue_wait_unknown_without_publish_time():
    assert latency.queue_wait(None, None, 100.0) is None
    assert latency.queue_wait(None, 130.0, 131.0) is None


def test_queue_wait_never_negative_when_the_publisher_clock_is_ahead():
    assert latency.queue_wait(105.0, None, 100.0) == 0.0


def test_prefetch_wait_of_an_eta_task_counts_from_its_due_time():
    assert latency.prefetch_wait(10.0, 12.0) == 2.0
    assert latency.prefetch_wait(10.0, 41.0, eta_monotonic=40.0) == pytest.approx(1.0)
    assert latency.prefetch_wait(10.0, 39.9, eta_monotonic=40.0) == 0.0  # timer fired a little early


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"published_at": None},
        {"published_at": "soon"},
        {"published_at": float("nan")},
        {"published_at": float("inf")},
        {"published_at": -1},
        {"published_at": True},
        {"published_at": [1]},
    ],
)
def test_publish_time_missing_or_unusable_is_none(headers):
    assert latency.publish_time(headers) is None


def test_publish_time_accepts_numbers_and_numeric_strings():
    assert latency.publish_time({"published_at": 1700000000.25}) == 1700000000.25
    assert latency.publish_time({"published_at": 1700000000}) == 1700000000.0
    assert latency.publish_time({"published_at": "1700000000.5"}) == 1700000000.5


# --- Metrics ------------------------------------------------------------------------------------


def scrape(metrics):
    registry = CollectorRegistry()
    metrics.register(registry)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in registry.collect() for s in fam.samples}


def value(samples, name, queue="celery", task="process_task", **extra):
    labels = {"worker": NODE, "task": task, "queue": queue, **extra}
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_started_without_publish_time_counts_unknown_and_still_observes_prefetch():
    metrics = LatencyMetrics()
    series = metrics.series(NODE, "process_task", "celery")
    metrics.started(series, None, None, start_wall=1000.0, start_mono=50.0, received_mono=49.0)
    metrics.started(series, 998.0, None, start_wall=1000.0, start_mono=50.0, received_mono=49.5)
    s = scrape(metrics)
    assert value(s, "celery_worker_task_queue_wait_unknown_total") == 1
    assert value(s, "celery_worker_task_queue_wait_seconds_count") == 1
    assert value(s, "celery_worker_task_queue_wait_seconds_sum") == pytest.approx(2.0)
    assert value(s, "celery_worker_task_prefetch_wait_seconds_count") == 2
    assert value(s, "celery_worker_task_prefetch_wait_seconds_sum") == pytest.approx(1.5)


def test_started_with_eta_converts_it_to_both_clocks():
    metrics = LatencyMetrics()
    series = metrics.series(NODE, "process_task", "celery")
    # Received at mono 10 (wall 1000), due at wall 1030, started at wall 1031 = mono 41.
    metrics.started(series, 1000.0, 1030.0, start_wall=1031.0, start_mono=41.0, received_mono=10.0)
    s = scrape(metrics)
    assert value(s, "celery_worker_task_queue_wait_seconds_sum") == pytest.approx(1.0)
    assert value(s, "celery_worker_task_prefetch_wait_seconds_sum") == pytest.approx(1.0)


def test_default_buckets_span_5ms_to_an_hour():
    metrics = LatencyMetrics()
    metrics.series(NODE, "t", "q").runtime.observe(0.001)
    bounds = [
        dict(labels)["le"] for (name, labels) in scrape(metrics) if name == "celery_worker_task_runtime_seconds_bucket"
    ]
    assert bounds[0] == "0.005" and bounds[-2] == "3600.0" and bounds[-1] == "+Inf"
    assert len(bounds) == len(settings.DEFAULT_TASK_LATENCY_BUCKETS) + 1


# --- Queue label -------------------------------------------------------------------------------


def test_queue_label_is_bounded_by_the_consumed_queues():
    labels = QueueLabels()
    two = {"celery": Queue("celery"), "bulk": Queue("bulk", routing_key="bulk.#")}
    assert labels(two, "celery") == "celery"
    assert labels(two, "bulk.#") == "bulk"  # a queue's binding key
    assert labels(two, "bulk.report.daily") == "unknown"  # a topic key: no series per key
    assert labels(two, None) == "unknown"
    assert labels({"only": Queue("only")}, "anything.else") == "only"  # one queue: it came from there


def test_queue_label_follows_queues_added_at_runtime():
    labels = QueueLabels()
    consumed = {"celery": Queue("celery"), "a": Queue("a")}
    assert labels(consumed, "b") == "unknown"
    consumed["b"] = Queue("b")  # add_consumer
    assert labels(consumed, "b") == "b"


# --- Settings ----------------------------------------------------------------------------------


def test_buckets_default_and_custom(monkeypatch):
    monkeypatch.delenv("TASK_LATENCY_BUCKETS", raising=False)
    assert settings.task_latency_buckets() == settings.DEFAULT_TASK_LATENCY_BUCKETS
    monkeypatch.setenv("TASK_LATENCY_BUCKETS", "")  # compose passes empty: the default
    assert settings.task_latency_buckets() == settings.DEFAULT_TASK_LATENCY_BUCKETS
    monkeypatch.setenv("TASK_LATENCY_BUCKETS", " 0.1, 1,10 ")
    assert settings.task_latency_buckets() == (0.1, 1.0, 10.0)


@pytest.mark.parametrize(
    "text, says",
    [
        ("0.1,abc,1", "'abc' is not a number"),
        ("0.1,,1", "'' is not a number"),
        ("1,0.5", "must increase (1 then 0.5)"),
        ("1,1", "must increase"),
        ("0,1", "positive"),
        ("-1", "positive"),
        ("0.1,inf", "finite"),
        ("nan", "finite"),
    ],
)
def test_bad_buckets_are_refused_naming_variable_and_value(monkeypatch, text, says):
    monkeypatch.setenv("TASK_LATENCY_BUCKETS", text)
    with pytest.raises(ValueError) as err:
        settings.task_latency_buckets()
    message = str(err.value)
    assert message.startswith(f"TASK_LATENCY_BUCKETS={text!r}: ") and says in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "text, on", [("1", True), ("on", True), ("TRUE", True), ("0", False), ("off", False), (" no ", False)]
)
def test_switch(monkeypatch, text, on):
    monkeypatch.setenv("WORKER_LATENCY_METRICS", text)
    assert settings.worker_latency_metrics() is on


@pytest.mark.parametrize("text, by_task", [("1", True), ("per_queue", False), (" PER_QUEUE ", False)])
def test_per_queue_keeps_the_measurement_and_drops_the_task_label(monkeypatch, text, by_task):
    monkeypatch.setenv("WORKER_LATENCY_METRICS", text)
    assert settings.worker_latency_metrics() is True
    assert settings.worker_latency_by_task() is by_task


def exposed_series(metrics):
    registry = CollectorRegistry()
    metrics.register(registry)
    return [s for family in registry.collect() for s in family.samples if not s.name.endswith("_created")]


@pytest.mark.parametrize("by_task, per_pair", [(True, 64), (False, 64)])
def test_series_per_worker_follow_the_formula(by_task, per_pair):
    """3 histograms x (18 bounds + 3) + 1 counter per (task, queue) pair, or per queue without the
    task label: docs/cardinality.md's formula."""
    metrics = LatencyMetrics(by_task=by_task)
    for task in ("a", "b", "c"):
        for queue in ("q1", "q2"):
            metrics.series("w@h", task, queue)
    pairs = 6 if by_task else 2
    series = exposed_series(metrics)
    assert len(series) == pairs * per_pair == pairs * (3 * (len(settings.DEFAULT_TASK_LATENCY_BUCKETS) + 3) + 1)
    assert all(("task" in s.labels) is by_task for s in series)


def test_bad_switch_is_refused(monkeypatch):
    monkeypatch.setenv("WORKER_LATENCY_METRICS", "maybe")
    with pytest.raises(ValueError, match=r"^WORKER_LATENCY_METRICS='maybe': use 1"):
        settings.worker_latency_metrics()


@pytest.mark.parametrize("name, bad", [("TASK_LATENCY_BUCKETS", "0.1,soon"), ("WORKER_LATENCY_METRICS", "maybe")])
def test_worker_refuses_to_start_with_one_line(name, bad):
    # A broker that does not exist: the worker must stop before it would connect anywhere.
    env = {**os.environ, name: bad, "BROKER_URL": "amqp://guest:guest@127.0.0.1:1//", "PYTHONPATH": REPO}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.celery_app",
            "worker",
            "-Q",
            "nothing-here",
            "--loglevel=WARNING",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stderr.strip().splitlines()[-1].startswith(f"celery worker: {name}={bad!r}: ")


# --- Celery's request pipeline, in process ------------------------------------------------------


@pytest.fixture
def app():
    """A Celery app on the memory transport, its own queue, a task that sleeps and one that fails."""
    previous = get_current_app()
    app = Celery("latency-test", broker="memory://")  # current app: the pool's trace looks tasks up there
    app.conf.update(task_ignore_result=True, task_acks_late=True, task_default_queue=f"latency-{uuid.uuid4().hex[:8]}")

    @app.task(name="nap", shared=False)
    def nap(seconds=0.0):
        time.sleep(seconds)

    @app.task(name="boom", shared=False)
    def boom():
        raise RuntimeError("on purpose")

    app.finalize()
    app.set_current()
    yield app
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(app.conf.task_default_queue)
    previous.set_current()


@pytest.fixture
def metrics(monkeypatch):
    metrics = LatencyMetrics()
    monkeypatch.setattr(latency, "METRICS", metrics)
    return metrics


def fetch(app):
    with app.connection_for_read() as conn:
        message = conn.default_channel.basic_get(app.conf.task_default_queue, no_ack=True)
    assert message is not None
    return message


def request_class(app, task_name, base=TimedRequest, pool=None):
    """The class the worker's strategy builds per task (celery/worker/strategy.py)."""
    return create_request_cls(base, app.tasks[task_name], pool or TaskPool(), NODE, None, app=app)


def receive(app, message, Req=None, pool=None):
    """What the worker's strategy does with a delivered message: the request (received now)."""
    Req = Req or request_class(app, message.headers["task"], pool=pool)
    return Req(
        message,
        app=app,
        hostname=NODE,
        task=app.tasks[message.headers["task"]],
        body=message.body,
        headers=message.headers,
        decoded=False,
        utc=True,
    )


def run(app, message, Req=None, pool=None):
    """Receive the message and hand its task to the pool at once."""
    pool = pool or TaskPool()
    receive(app, message, Req, pool).execute_using_pool(pool)


def observed(metrics, app, name, task="nap"):
    return value(scrape(metrics), name, queue=app.conf.task_default_queue, task=task)


def test_published_messages_carry_publish_time_and_amqp_timestamp(app):
    before = time.time()
    app.send_task("nap")
    message = fetch(app)
    after = time.time()
    assert before <= message.headers["published_at"] <= after
    assert isinstance(message.headers["published_at"], float)
    assert message.properties["timestamp"] == int(message.headers["published_at"])


def test_republish_overwrites_publish_time(app):
    app.send_task("nap", headers={"published_at": 1.0})  # e.g. a retry copying the old headers
    assert fetch(app).headers["published_at"] > time.time() - 60


def test_celerys_generated_request_class_is_timed(app):
    # create_request_cls replaces on_success without calling the base's: it must still be timed.
    Req = request_class(app, "nap")
    assert "on_success" in Req.__dict__ and getattr(Req.on_success, "_latency_timed", False)


def test_a_task_through_the_pool_is_observed_in_every_stage(app, metrics):
    app.send_task("nap", kwargs={"seconds": 0.3})
    time.sleep(0.2)  # waits in the broker before the worker takes it
    request = receive(app, fetch(app))
    time.sleep(0.1)  # waits in the worker (prefetched) before the pool starts it
    request.execute_using_pool(TaskPool())
    assert observed(metrics, app, "celery_worker_task_runtime_seconds_count") == 1
    assert observed(metrics, app, "celery_worker_task_runtime_seconds_sum") == pytest.approx(0.3, abs=0.05)
    assert observed(metrics, app, "celery_worker_task_queue_wait_seconds_sum") == pytest.approx(0.3, abs=0.05)
    assert observed(metrics, app, "celery_worker_task_prefetch_wait_seconds_sum") == pytest.approx(0.1, abs=0.05)
    assert observed(metrics, app, "celery_worker_task_queue_wait_unknown_total") == 0


def test_a_failed_task_is_observed_once(app, metrics):
    app.send_task("boom")
    run(app, fetch(app))
    assert observed(metrics, app, "celery_worker_task_runtime_seconds_count", task="boom") == 1
    assert observed(metrics, app, "celery_worker_task_queue_wait_seconds_count", task="boom") == 1


def test_a_message_without_the_header_is_counted_unknown(app, metrics):
    app.send_task("nap")
    message = fetch(app)
    del message.headers["published_at"]  # what a client without this app's signal sends
    run(app, message)
    assert observed(metrics, app, "celery_worker_task_queue_wait_unknown_total") == 1
    assert observed(metrics, app, "celery_worker_task_queue_wait_seconds_count") == 0
    assert observed(metrics, app, "celery_worker_task_prefetch_wait_seconds_count") == 1
    assert observed(metrics, app, "celery_worker_task_runtime_seconds_count") == 1


def test_an_eta_task_counts_queue_wait_from_its_due_time(app, metrics):
    app.send_task("nap", eta=datetime.now(timezone.utc) + timedelta(seconds=0.5))
    request = receive(app, fetch(app))  # received at once, held by the worker until due
    time.sleep(0.6)  # due 0.1 s ago: the ETA timer fired, then the pool slot freed up
    request.execute_using_pool(TaskPool())
    assert observed(metrics, app, "celery_worker_task_queue_wait_seconds_sum") == pytest.approx(0.1, abs=0.08)
    assert observed(metrics, app, "celery_worker_task_prefetch_wait_seconds_sum") == pytest.approx(0.1, abs=0.08)


def test_per_task_overhead_is_small(app, metrics):
    """What the hooks add per task in the worker's main process: receiving (the request built),
    started (on_accepted) and finished (on_success), with Celery's Request and with TimedRequest."""
    count, rounds = 1000, 12
    for _ in range(count):
        app.send_task("nap")
    messages = [fetch(app) for _ in range(count)]
    task, pool = app.tasks["nap"], TaskPool()
    classes = {base: request_class(app, "nap", base, pool) for base in (Request, TimedRequest)}
    times = {base: [] for base in classes}
    for i in range(rounds):  # interleaved, medians: less noise from a busy machine
        for base in (Request, TimedRequest) if i % 2 else (TimedRequest, Request):
            Req = classes[base]
            start = time.perf_counter()
            for message in messages:
                req = Req(
                    message,
                    app=app,
                    hostname=NODE,
                    task=task,
                    body=message.body,
                    headers=message.headers,
                    decoded=False,
                    utc=True,
                )
                req.on_accepted(1, time.monotonic())
                req.on_success((0, "None", 0.001))
            times[base].append((time.perf_counter() - start) / count)
    plain, timed = statistics.median(times[Request]), statistics.median(times[TimedRequest])
    print(
        f"hooks per task: Celery's Request {plain * 1e6:.1f} us, TimedRequest {timed * 1e6:.1f} us, "
        f"overhead {(timed - plain) * 1e6:.1f} us"
    )
    assert observed(metrics, app, "celery_worker_task_runtime_seconds_count") == count * rounds
    assert timed - plain < 100e-6
