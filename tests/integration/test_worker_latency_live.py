"""Task latency by stage on a real worker's /metrics, and its task events, on RabbitMQ and on Redis.

One `celery worker` per broker for the module: the bundle's app (worker.celery_app), one pool slot,
prefetch 4, its own queue, on a RabbitMQ vhost and a Redis database of its own (the stack's tests
use vhost / and Redis databases 0 and 1). Tasks are the bundle's process_task (sleeps `timeout`
seconds); each test gives its tasks a shadow name of its own, which the worker uses as the `task`
label, so each test reads series nobody else touched.
"""

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest
import redis
import requests
from celery import Celery, signals
from celery.beat import ScheduleEntry, Scheduler
from celery.events.receiver import EventReceiver
from prometheus_client.parser import text_string_to_metric_families

from native.ports import PORTS as STACK_PORTS
from tests.live import wait_for
from worker import latency, settings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CELERY = os.path.join(REPO, ".venv", "bin", "celery")
QUEUE = "latency-test"
VHOST = "celery-latency-test"
REDIS_DB = 13
BROKERS = {
    "amqp": f"amqp://guest:guest@127.0.0.1:{STACK_PORTS['rabbitmq']}/{VHOST}",
    "redis": f"redis://127.0.0.1:{STACK_PORTS['redis']}/{REDIS_DB}",
}
MANAGEMENT = f"http://127.0.0.1:{STACK_PORTS['rabbitmq_management']}/api"
GUEST = ("guest", "guest")
PORTS = range(9291, 9300)


def free_port():
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {PORTS.start}-{PORTS.stop - 1} for the worker's /metrics")


def ensure_vhost():
    """The tests' own vhost, through the management API (idempotent)."""
    vhost = urllib.parse.quote(VHOST, safe="")
    r = requests.put(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST, timeout=10)
    assert r.status_code in (201, 204), f"creating vhost {VHOST}: {r.status_code} {r.text}"
    r = requests.put(
        f"{MANAGEMENT}/permissions/{vhost}/guest",
        auth=GUEST,
        timeout=10,
        json={"configure": ".*", "write": ".*", "read": ".*"},
    )
    assert r.status_code in (201, 204), f"permissions on {VHOST}: {r.status_code} {r.text}"


def scrape(port):
    """The worker's /metrics as {(sample name, labels): value}."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


class Worker:
    def __init__(self, broker, process, port, nodename, client, log):
        self.broker, self.process, self.port, self.nodename = broker, process, port, nodename
        self.client, self.log = client, log

    def scrape(self):
        return scrape(self.port)

    def value(self, name, task, samples=None, **labels):
        samples = self.scrape() if samples is None else samples
        key = frozenset({"worker": self.nodename, "task": task, "queue": QUEUE, **labels}.items())
        return samples.get((name, key), 0.0)

    def send(self, shadow, timeout=0.0, **options):
        """process_task under the name `shadow` (the `task` label), on the worker's queue."""
        return self.client.send_task(
            "process_task", kwargs={"task_num": 1, "timeout": timeout}, queue=QUEUE, shadow=shadow, **options
        )

    def wait_finished(self, task, count, timeout=20):
        """Samples once `count` tasks named `task` finished (their runtime observed)."""

        def done():
            assert self.process.poll() is None, f"the worker exited; see {self.log}"
            return self.value("celery_worker_task_runtime_seconds_count", task) >= count

        wait_for(done, timeout, 0.2, f"{count} {task} tasks finished on the {self.broker} worker")
        # A scrape reads one metric after another, so a task can start and finish while it runs: the
        # scrape that saw the last runtime may have missed that task's queue wait. Runtime is observed
        # last, so a scrape begun after it sees every stage of the finished tasks.
        return self.scrape()


def start_worker(broker, queue, log, **env_extra):
    """`celery worker` on the bundle's app: one pool slot, prefetch 4, `queue`, /metrics on a free port."""
    url = BROKERS[broker]
    port = free_port()
    nodename = f"latency-{broker}-{queue}-{os.getpid()}@{socket.gethostname()}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORKER_METRICS", "WORKER_LATENCY_METRICS", "TASK_LATENCY_BUCKETS")
    }
    # Results go to the same private Redis database as the Redis broker, emptied at the end.
    env.update(
        BROKER_URL=url,
        REDIS_URL=BROKERS["redis"],
        WORKER_METRICS_PORT=str(port),
        WORKER_METRICS_ADDR="127.0.0.1",
        PYTHONPATH=REPO,
        **env_extra,
    )
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "worker.celery_app",
                "worker",
                "-n",
                nodename,
                "-c",
                "1",
                "--prefetch-multiplier=4",
                "-Q",
                queue,
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
            ],
            env=env,
            cwd=REPO,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def serving():
        assert process.poll() is None, f"the worker exited at start:\n{log.read_text()}"
        try:
            return "celery_worker_cpu_seconds_total" in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except requests.RequestException:
            return False

    try:
        wait_for(serving, 60, 0.3, f"the {broker} worker's /metrics on {port}")
    except BaseException:
        stop(process)
        raise
    return process, port, nodename


def stop(process):
    os.killpg(process.pid, signal.SIGTERM)  # warm shutdown
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def client_for(broker):
    client = Celery("latency-client", broker=BROKERS[broker], set_as_current=False)
    client.conf.update(task_serializer="json", broker_connection_retry_on_startup=True)
    return client


def delete_queue(client, queue):
    with client.connection_for_write() as conn:
        with contextlib.suppress(Exception):  # no such queue
            conn.default_channel.queue_delete(queue)


@pytest.fixture(scope="module", params=sorted(BROKERS))
def worker(request, tmp_path_factory):
    broker = request.param
    if broker == "amqp":
        ensure_vhost()
    client = client_for(broker)
    delete_queue(client, QUEUE)  # left over from an interrupted run
    log = tmp_path_factory.mktemp(f"latency-{broker}") / "worker.log"
    process, port, nodename = start_worker(broker, QUEUE, log)
    yield Worker(broker, process, port, nodename, client, log)
    stop(process)
    delete_queue(client, QUEUE)
    client.close()
    redis.Redis.from_url(BROKERS["redis"]).flushdb()


@contextlib.contextmanager
def publisher_without_the_header():
    """This process as a client that does not import the bundle's app: no publish-time header."""
    uid = "worker.latency.stamp_publish_time"
    signals.before_task_publish.disconnect(dispatch_uid=uid)
    try:
        yield
    finally:
        signals.before_task_publish.connect(latency.stamp_publish_time, weak=False, dispatch_uid=uid)


def test_every_task_is_counted_once_in_each_stage(worker):
    task = "lat-count"
    worker.send(task, timeout=1.0)
    worker.send(task)
    worker.send(task)
    worker.client.send_task(
        "process_task", kwargs={"task_num": 1, "timeout": 0, "fail": True}, queue=QUEUE, shadow=task
    )
    worker.wait_finished(task, 4)
    time.sleep(0.5)  # nothing more may arrive
    s = worker.scrape()
    for stage in ("queue_wait", "prefetch_wait", "runtime"):
        assert worker.value(f"celery_worker_task_{stage}_seconds_count", task, s) == 4, stage
    assert worker.value("celery_worker_task_queue_wait_unknown_total", task, s) == 0
    # Three tasks took ~0 s, the one of 1 s lands above the 1 s bound.
    assert worker.value("celery_worker_task_runtime_seconds_bucket", task, s, le="0.5") == 3
    assert worker.value("celery_worker_task_runtime_seconds_bucket", task, s, le="1.0") == 3
    assert worker.value("celery_worker_task_runtime_seconds_bucket", task, s, le="2.5") == 4
    assert 1.0 <= worker.value("celery_worker_task_runtime_seconds_sum", task, s) < 1.5
    # No `*_created` series (one more per label set of each histogram and counter).
    assert not [name for name, _ in s if name.endswith("_created")]


def test_a_task_behind_a_long_one_waits_about_its_duration(worker):
    # One pool slot, prefetch 4: the short task is delivered at once and waits in the worker.
    worker.send("lat-long", timeout=2.0)
    worker.send("lat-behind")
    s = worker.wait_finished("lat-behind", 1)
    assert worker.value("celery_worker_task_queue_wait_seconds_count", "lat-behind", s) == 1
    assert 1.8 <= worker.value("celery_worker_task_queue_wait_seconds_sum", "lat-behind", s) <= 2.6
    assert 1.8 <= worker.value("celery_worker_task_prefetch_wait_seconds_sum", "lat-behind", s) <= 2.6
    assert worker.value("celery_worker_task_queue_wait_seconds_bucket", "lat-behind", s, le="1.0") == 0
    # The long task itself started at once.
    assert worker.value("celery_worker_task_queue_wait_seconds_sum", "lat-long", s) < 0.5


def test_prefetch_wait_leaves_out_the_time_in_the_broker(worker):
    # Prefetch 4 with late acks: the 5th task stays in the broker until the 1st is acknowledged
    # (~0.5 s), then waits in the worker until the 4 before it ran (~2 s after publish).
    for _ in range(4):
        worker.send("lat-ahead", timeout=0.5)
    worker.send("lat-fifth")
    s = worker.wait_finished("lat-fifth", 1)
    queue_wait = worker.value("celery_worker_task_queue_wait_seconds_sum", "lat-fifth", s)
    prefetch_wait = worker.value("celery_worker_task_prefetch_wait_seconds_sum", "lat-fifth", s)
    assert 1.8 <= queue_wait <= 2.6
    assert 0.3 <= queue_wait - prefetch_wait <= 0.9


def test_countdown_counts_queue_wait_from_the_due_time(worker):
    published = time.time()
    worker.send("lat-countdown", countdown=3)
    s = worker.wait_finished("lat-countdown", 1)
    assert time.time() - published >= 3  # it did wait for its countdown
    assert worker.value("celery_worker_task_queue_wait_seconds_sum", "lat-countdown", s) < 1.0
    assert worker.value("celery_worker_task_prefetch_wait_seconds_sum", "lat-countdown", s) < 1.0
    assert worker.value("celery_worker_task_queue_wait_seconds_count", "lat-countdown", s) == 1


def test_a_message_without_the_header_is_counted_unknown(worker):
    task = "lat-unknown"
    with publisher_without_the_header():
        worker.send(task)
        worker.send(task, headers={"published_at": "not a time"})
    worker.send(task)  # and one with the header again
    s = worker.wait_finished(task, 3)
    assert worker.value("celery_worker_task_queue_wait_unknown_total", task, s) == 2
    assert worker.value("celery_worker_task_queue_wait_seconds_count", task, s) == 1
    assert worker.value("celery_worker_task_prefetch_wait_seconds_count", task, s) == 3
    assert worker.value("celery_worker_task_runtime_seconds_count", task, s) == 3
    assert worker.process.poll() is None
    assert "latency measurement failed" not in worker.log.read_text()


def test_apply_async_and_a_beat_scheduler_carry_the_publish_time(worker):
    task = "lat-beat"
    worker.client.signature(
        "process_task", kwargs={"task_num": 1, "timeout": 0}, options={"queue": QUEUE, "shadow": task}
    ).apply_async()
    scheduler = Scheduler(worker.client, lazy=True)
    entry = ScheduleEntry(
        name="latency-beat",
        task="process_task",
        schedule=60,
        kwargs={"task_num": 2, "timeout": 0},
        options={"queue": QUEUE, "shadow": task},
        app=worker.client,
    )
    with worker.client.producer_or_acquire() as producer:
        scheduler.apply_async(entry, producer=producer)
    s = worker.wait_finished(task, 2)
    assert worker.value("celery_worker_task_queue_wait_seconds_count", task, s) == 2
    assert worker.value("celery_worker_task_queue_wait_unknown_total", task, s) == 0


class CountingReceiver(EventReceiver):
    """Celery's event receiver, counting the messages the events came in and when each arrived."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.messages, self.arrivals, self.ready = 0, [], threading.Event()

    def _receive(self, body, message, **kwargs):
        self.messages += 1
        for event in body if isinstance(body, list) else [body]:
            self.arrivals.append((time.time(), event))
        return super()._receive(body, message, **kwargs)

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        super().on_consume_ready(connection, channel, consumers, wakeup=False)
        self.ready.set()


def test_task_events_arrive_in_batches_and_name_the_queue(worker):
    """worker/events.py: every task event arrives, task-received names the queue, and they leave in
    batches (settings.EVENT_FLUSH_SECONDS), each within a moment of happening."""
    tasks = 40
    with worker.client.connection_for_read() as conn:
        receiver = CountingReceiver(conn, app=worker.client)
        listening = threading.Thread(target=receiver.capture, kwargs={"wakeup": False}, daemon=True)
        listening.start()
        try:
            assert receiver.ready.wait(20), "the event receiver did not start consuming"
            ids = {worker.send("lat-events").id for _ in range(tasks)}
            worker.wait_finished("lat-events", tasks)

            def all_events():
                seen = [(arrived, e) for arrived, e in receiver.arrivals if e.get("uuid") in ids]
                return seen if len(seen) >= 3 * tasks else None

            seen = wait_for(all_events, 10, 0.2, f"the {3 * tasks} task events of {tasks} tasks")
        finally:
            receiver.should_stop = True
            listening.join(10)
    kinds = sorted(e["type"] for _, e in seen)
    assert kinds == sorted(["task-received", "task-started", "task-succeeded"] * tasks)
    assert {e["queue"] for _, e in seen if e["type"] == "task-received"} == {QUEUE}
    # Celery alone sends about one event per message here (prefetch 4, one pool slot): 120 in 118.
    per_message = len(receiver.arrivals) / receiver.messages
    assert per_message >= 6, f"{len(receiver.arrivals)} events in {receiver.messages} messages"
    late = max(arrived - e["timestamp"] for arrived, e in seen)
    assert late < settings.EVENT_FLUSH_SECONDS + 2, f"an event arrived {late:.2f} s after it happened"


def test_rabbitmq_shows_the_age_of_the_oldest_message():
    """The AMQP timestamp property the publishers set: RabbitMQ's management API shows it for the
    message at the head of a queue (head_message_timestamp; rabbitmq_prometheus has it as
    rabbitmq_queue_head_message_timestamp per object, rabbitmq_detailed_queue_head_message_timestamp
    in the queue_metrics family)."""
    ensure_vhost()
    client = client_for("amqp")
    side = f"{QUEUE}-unconsumed"
    before = int(time.time())
    client.send_task("process_task", kwargs={"task_num": 1, "timeout": 0}, queue=side)
    url = f"{MANAGEMENT}/queues/{urllib.parse.quote(VHOST, safe='')}/{side}"
    try:
        head = wait_for(
            lambda: requests.get(url, auth=GUEST, timeout=5).json().get("head_message_timestamp"),
            20,
            0.5,
            "head_message_timestamp in the management API",
        )
        assert before <= head <= time.time()
    finally:
        delete_queue(client, side)
        client.close()


def test_per_queue_keeps_the_stages_without_the_task_label(tmp_path):
    """WORKER_LATENCY_METRICS=per_queue (docs/cardinality.md): tasks of two names share one series
    set per queue, 3 x (bounds + 3) + 1 series, counted exactly."""
    ensure_vhost()
    queue = f"{QUEUE}-per-queue"
    client = client_for("amqp")
    results = []
    process, port, nodename = start_worker("amqp", queue, tmp_path / "worker.log", WORKER_LATENCY_METRICS="per_queue")
    try:
        for shadow in ("lat-a", "lat-b", "lat-b"):
            kwargs = {"task_num": 1, "timeout": 0}
            results.append(client.send_task("process_task", kwargs=kwargs, queue=queue, shadow=shadow))
        key = frozenset({"worker": nodename, "queue": queue}.items())

        def finished():
            return scrape(port).get(("celery_worker_task_runtime_seconds_count", key), 0) >= 3

        wait_for(finished, 20, 0.2, "three tasks finished on the per-queue worker")
        samples = scrape(port)  # begun after the last runtime: it sees every stage (Worker.wait_finished)
        stages = [(name, dict(labels)) for name, labels in samples if name.startswith("celery_worker_task_")]
        assert stages and all(set(labels) <= {"worker", "queue", "le"} for _, labels in stages)
        assert len(stages) == 3 * (len(settings.DEFAULT_TASK_LATENCY_BUCKETS) + 3) + 1
        assert samples[("celery_worker_task_queue_wait_seconds_count", key)] == 3
    finally:
        stop(process)
        delete_queue(client, queue)
        client.close()
        for result in results:
            redis.Redis.from_url(BROKERS["redis"]).delete(f"celery-task-meta-{result.id}")


def test_latency_metrics_can_be_turned_off(tmp_path):
    ensure_vhost()
    queue = f"{QUEUE}-off"
    client = client_for("amqp")
    result = None
    process, port, nodename = start_worker("amqp", queue, tmp_path / "worker.log", WORKER_LATENCY_METRICS="0")
    try:
        result = client.send_task("process_task", kwargs={"task_num": 1, "timeout": 0}, queue=queue)

        def finished():
            samples = scrape(port)
            started = sum(v for (name, _), v in samples.items() if name == "celery_worker_tasks_started_total")
            return samples if started >= 1 else None

        wait_for(finished, 20, 0.2, "a task started on the worker with latency metrics off")
        time.sleep(0.5)  # and finished
        samples = scrape(port)
        assert ("celery_worker_cpu_seconds_total", frozenset({"worker": nodename}.items())) in samples
        assert not [name for name, _ in samples if name.startswith("celery_worker_task_")]
    finally:
        stop(process)
        delete_queue(client, queue)
        client.close()
        if result is not None:
            redis.Redis.from_url(BROKERS["redis"]).delete(f"celery-task-meta-{result.id}")
