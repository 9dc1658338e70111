"""The celery-exporter launcher (exporter/run_exporter.py) against real brokers and a real worker.

For each broker (RabbitMQ on its own vhost, Redis database 14) one worker consumes a queue of its
own, and two launchers watch it: one with the defaults but a short refresh interval, one with
per-worker task metrics and an interval longer than the test, so that it shows what its first
refresh (at start) stored and that scrapes refresh nothing. Another launcher reaches each broker
through a TCP proxy the test stops, to show that an outage keeps the last values served.

Nothing here uses vhost "/", port 9808 or 9090: the stack and its exporter may run meanwhile.
"""

import os
import random
import socket
import statistics
import subprocess
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from native import broker as native_broker, paths
from native.ports import PORTS

VHOST = "celery-exporter-test"
REDIS_BROKER = f"redis://127.0.0.1:{PORTS['redis']}/14"
INTERVAL = 2.0  # the default launcher's --queue-metrics-interval in these tests
REFRESH_S = 2.0  # a refresh waits out two 1 s inspect() replies
SLACK_S = 5.0
SCRAPE_BOUND_S = 0.5  # a correctness bound of the scrape path (expected ~10 ms), not a benchmark
TASKS, FAILING = 6, 1


def rabbitmq_url():
    """The local broker's guest user (allowed from 127.0.0.1) on this test's own vhost."""
    for args in (["add_vhost", VHOST], ["set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"]):
        out = native_broker.rabbitmqctl(args, check=False)
        assert out.returncode == 0 or "already" in out.stdout + out.stderr, out.stderr
    return f"amqp://guest:guest@127.0.0.1:{PORTS['rabbitmq']}/{VHOST}"


def free_port():
    """A free port below Linux's ephemeral range (32768+): a client retrying a closed port there
    could be given that very port as its own and connect to itself, keeping it taken."""
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 20000-32000")


def wait_for(check, timeout, message):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            message = message() if callable(message) else message
            raise AssertionError(f"{message}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(0.2)


def forget_redis_queues(*queues):
    """kombu's Redis transport keeps each queue's bindings in keys of their own."""
    redis.Redis.from_url(REDIS_BROKER).delete(
        *(f"_kombu.{kind}.{q}" for q in queues for kind in ("binding", "binding_permanent"))
    )


class Process:
    """A child process with its output in a file, stopped at the end (SIGTERM, then SIGKILL)."""

    def __init__(self, argv, env, log):
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=paths.REPO, stdout=out, stderr=subprocess.STDOUT)

    def output(self):
        return self.log.read_text()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Launcher(Process):
    def __init__(self, broker_url, queues, log, *options):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        env = {**os.environ, "EVENT_QUEUE_TTL": "60", "EVENT_QUEUE_EXPIRES": "120"}
        super().__init__(
            [
                str(paths.EXPORTER_VENV_BIN / "python"),
                "exporter/run_exporter.py",
                f"--broker-url={broker_url}",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--retry-interval=1",
                f"--queues={','.join(queues)}",
                *options,
            ],
            env,
            log,
        )

    def ready(self):
        wait_for(self.answers, 30, lambda: f"the launcher on :{self.port} ({self.output()[-500:]})")
        return self

    def answers(self):
        assert self.proc.poll() is None, f"the launcher exited:\n{self.output()[-3000:]}"
        try:
            return requests.get(self.url, timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def samples(self):
        text = requests.get(self.url, timeout=5).text
        return [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(self, sample, **labels):
        """The sample's value, or None if the exporter has no such series."""
        for s in self.samples():
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        return None

    def scrape_seconds(self, times=9):
        durations = []
        for _ in range(times):
            started = time.perf_counter()
            assert requests.get(self.url, timeout=10).status_code == 200
            durations.append(time.perf_counter() - started)
        return statistics.median(durations)


class Setup:
    """One broker, one worker on its own queue, an unconsumed queue, and two launchers."""

    def __init__(self, broker, tmp):
        self.broker = broker
        self.broker_url = rabbitmq_url() if broker == "rabbitmq" else REDIS_BROKER
        tag = uuid.uuid4().hex[:8]
        self.work, self.idle = f"cet-{tag}-work", f"cet-{tag}-idle"
        self.host = f"cethost-{tag}"  # the exporter's hostname label: the part after "@"
        self.nodename = f"cet-1@{self.host}"
        self.app = Celery(broker=self.broker_url)
        self.app.conf.task_send_sent_event = True  # the client's task-sent carries a hostname too
        self.processes = []
        try:
            self._start(tmp)
        except BaseException:
            self.close()
            raise

    def _start(self, tmp):
        env = {
            **os.environ,
            "BROKER_URL": self.broker_url,
            "RMQ_URL": self.broker_url,
            "REDIS_URL": REDIS_BROKER,
            "WORKER_METRICS": "0",
            "WORKER_CONCURRENCY": "2",
            "EVENT_QUEUE_TTL": "60",
            "EVENT_QUEUE_EXPIRES": "120",
        }
        self.worker = self._own(
            Process(
                [
                    str(paths.VENV_BIN / "celery"),
                    "-A",
                    "worker.celery_app",
                    "worker",
                    "-Q",
                    self.work,
                    "-n",
                    self.nodename,
                    "--loglevel=INFO",
                ],
                env,
                tmp / "worker.log",
            )
        )
        wait_for(
            lambda: self.app.control.ping(destination=[self.nodename], timeout=1),
            60,
            lambda: f"the worker's ping reply ({self.worker.output()[-1000:]})",
        )
        queues = (self.work, self.idle)
        self.default = self._own(
            Launcher(self.broker_url, queues, tmp / "default.log", f"--queue-metrics-interval={INTERVAL:g}")
        )
        self.per_worker = self._own(
            Launcher(
                self.broker_url,
                queues,
                tmp / "per_worker.log",
                "--queue-metrics-interval=3600",
                "--per-worker-task-metrics",
            )
        )
        self.default.ready()
        self.per_worker.ready()

    def _own(self, process):
        self.processes.append(process)
        return process

    def purge(self, queue):
        with self.app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)

    def close(self):
        for process in reversed(self.processes):
            process.stop()
        with self.app.connection_for_write() as conn:
            for queue in (self.work, self.idle):
                try:
                    conn.default_channel.queue_delete(queue)
                except Exception:  # noqa: BLE001 (never declared: nothing to delete)
                    pass
        if self.broker == "redis":
            forget_redis_queues(self.work, self.idle)


@pytest.fixture(scope="module", params=["rabbitmq", "redis"])
def setup(request, tmp_path_factory):
    s = Setup(request.param, tmp_path_factory.mktemp(request.param))
    yield s
    s.close()


def refreshed(launcher, queue):
    """The first refresh is done: the queue's worker count is there."""
    return launcher.value("celery_active_worker_count", queue_name=queue) is not None


def test_first_refresh_happens_at_start(setup):
    for launcher in (setup.default, setup.per_worker):
        wait_for(lambda: refreshed(launcher, setup.work), REFRESH_S + SLACK_S, "the queue series")
    # The per-worker launcher's interval is an hour: what it shows is from its start.
    assert setup.per_worker.value("celery_exporter_queue_metrics_refresh_timestamp_seconds") > 0
    assert setup.per_worker.value("celery_queue_length", queue_name=setup.idle) == 0


def test_scrape_serves_the_registry_without_asking_the_workers(setup):
    wait_for(lambda: refreshed(setup.per_worker, setup.work), REFRESH_S + SLACK_S, "the first refresh")
    stamp = setup.per_worker.value("celery_exporter_queue_metrics_refresh_timestamp_seconds")
    for launcher in (setup.default, setup.per_worker):
        median = launcher.scrape_seconds()
        assert median < SCRAPE_BOUND_S, f"median /metrics took {median * 1000:.0f} ms"
    # Many scrapes, no refresh: the hour-long interval's launcher still has its first one.
    assert setup.per_worker.value("celery_exporter_queue_metrics_refresh_timestamp_seconds") == stamp


def test_worker_and_consumer_counts_reflect_the_worker(setup):
    launcher = setup.default
    wait_for(
        lambda: launcher.value("celery_active_worker_count", queue_name=setup.work) == 1,
        INTERVAL + REFRESH_S + SLACK_S,
        "one worker on its queue",
    )
    assert launcher.value("celery_active_process_count", queue_name=setup.work) == 2  # its concurrency
    assert launcher.value("celery_active_worker_count", queue_name=setup.idle) == 0
    assert launcher.value("celery_active_process_count", queue_name=setup.idle) == 0
    if setup.broker == "rabbitmq":  # the exporter counts consumers on RabbitMQ only
        assert launcher.value("celery_active_consumer_count", queue_name=setup.work) == 1
        assert launcher.value("celery_active_consumer_count", queue_name=setup.idle) == 0
    else:
        assert launcher.value("celery_active_consumer_count", queue_name=setup.work) is None
    wait_for(lambda: launcher.value("celery_worker_up", hostname=setup.host) == 1, 10, "the worker's heartbeat")
    assert launcher.value("celery_exporter_queue_metrics_refresh_failures_total") == 0


def test_queue_length_follows_published_and_purged_messages(setup):
    launcher, n = setup.default, 7
    wait_for(lambda: refreshed(launcher, setup.idle), REFRESH_S + SLACK_S, "the first refresh")
    assert launcher.value("celery_queue_length", queue_name=setup.idle) == 0
    for i in range(n):
        setup.app.send_task("process_task", args=[i], queue=setup.idle)
    within = INTERVAL + REFRESH_S + SLACK_S  # one interval, the refresh itself, slack
    wait_for(lambda: launcher.value("celery_queue_length", queue_name=setup.idle) == n, within, f"{n} queued")
    setup.purge(setup.idle)
    wait_for(lambda: launcher.value("celery_queue_length", queue_name=setup.idle) == 0, within, "purged to 0")


def task_samples(launcher):
    return [s for s in launcher.samples() if s.name.startswith("celery_task_") and not s.name.endswith("_created")]


def test_task_metrics_per_worker_only_when_asked(setup):
    for i in range(TASKS):
        setup.app.send_task("process_task", args=[i], kwargs={"timeout": 0.05, "fail": i < FAILING}, queue=setup.work)
    ok = TASKS - FAILING

    def counted(launcher):
        return (
            sum(s.value for s in task_samples(launcher) if s.name == "celery_task_succeeded_total") == ok
            and sum(s.value for s in task_samples(launcher) if s.name == "celery_task_failed_total") == FAILING
        )

    for launcher in (setup.default, setup.per_worker):
        wait_for(lambda: counted(launcher), 30, "the tasks' events counted")

    # Default: one series per task name and queue, no hostname on any task metric.
    default = task_samples(setup.default)
    assert [s for s in default if "hostname" in s.labels] == []
    assert setup.default.value("celery_task_succeeded_total", name="process_task", queue_name=setup.work) == ok
    assert setup.default.value("celery_task_runtime_count", name="process_task", queue_name=setup.work) == ok
    assert (
        setup.default.value(
            "celery_task_failed_total", name="process_task", queue_name=setup.work, exception="SimulatedTaskError"
        )
        == FAILING
    )
    sent = [s for s in default if s.name == "celery_task_sent_total" and s.labels["queue_name"] == setup.work]
    assert [s.value for s in sent] == [TASKS]
    # No `*_created` series (one more per counter and histogram label set): the launcher turns them off.
    assert [s.name for s in setup.default.samples() if s.name.endswith("_created")] == []
    # ... while the per-worker gauges stay per worker.
    assert setup.default.value("celery_worker_up", hostname=setup.host) == 1
    assert setup.default.value("celery_worker_tasks_active", hostname=setup.host) is not None

    # --per-worker-task-metrics: the worker's hostname on what it ran, the client's on task-sent.
    per_worker = task_samples(setup.per_worker)
    ran = [s for s in per_worker if s.name != "celery_task_sent_total" and s.labels["queue_name"] == setup.work]
    assert ran and {s.labels["hostname"] for s in ran} == {setup.host}
    assert (
        setup.per_worker.value(
            "celery_task_succeeded_total", name="process_task", queue_name=setup.work, hostname=setup.host
        )
        == ok
    )
    assert (
        setup.per_worker.value(
            "celery_task_runtime_count", name="process_task", queue_name=setup.work, hostname=setup.host
        )
        == ok
    )
    assert {s.labels["hostname"] for s in per_worker if s.name == "celery_task_sent_total"} - {setup.host}


def test_without_task_sent_the_workers_events_still_name_the_queue(setup):
    """A publisher that sends no task-sent (the bundle's default): the exporter takes the queue from
    the worker's task-received event (worker/events.py), not its "celery" fallback."""
    quiet = Celery(broker=setup.broker_url)
    quiet.conf.task_send_sent_event = False
    before = setup.default.value("celery_task_succeeded_total", name="process_task", queue_name=setup.work) or 0
    for i in range(3):
        quiet.send_task("process_task", args=[i], kwargs={"timeout": 0}, queue=setup.work)
    wait_for(
        lambda: (
            (setup.default.value("celery_task_succeeded_total", name="process_task", queue_name=setup.work) or 0)
            == before + 3
        ),
        30,
        "3 more successes counted on the worker's queue",
    )
    fallback = setup.default.value("celery_task_received_total", name="process_task", queue_name="celery")
    assert not fallback, f"{fallback} tasks counted on the fallback queue `celery`"


class TcpProxy:
    """Forwards a local port to the broker; stop() closes it and every connection through it."""

    def __init__(self, target):
        self.target, self.port = target, free_port()
        self._sockets, self._server, self._lock, self._up = [], None, threading.Lock(), False

    def start(self):
        self._up = True
        self._server = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: same port again
        self._server.settimeout(0.2)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server):
        while server.fileno() != -1:
            try:
                client, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            with self._lock:
                if not self._up:  # accepted while stop() ran: no connection gets through
                    for s in (client, upstream):
                        s.close()
                    return
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        # shutdown() first: it stops the listener at once, even while the accepting thread holds it.
        with self._lock:
            self._up = False
            for s in [self._server, *self._sockets]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._sockets.clear()


@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
def test_broker_outage_keeps_the_last_values_served(broker, tmp_path):
    url = urlsplit(rabbitmq_url() if broker == "rabbitmq" else REDIS_BROKER)
    proxy = TcpProxy((url.hostname, url.port))
    proxy.start()
    credentials = f"{url.username}:{url.password}@" if url.username else ""
    proxied = urlunsplit(url._replace(netloc=f"{credentials}127.0.0.1:{proxy.port}"))
    idle = f"cet-{uuid.uuid4().hex[:8]}-idle"
    app = Celery(broker=urlunsplit(url))
    launcher = Launcher(proxied, [idle], tmp_path / "launcher.log", f"--queue-metrics-interval={INTERVAL:g}")
    try:
        launcher.ready()
        for i in range(3):
            app.send_task("process_task", args=[i], queue=idle)
        within = INTERVAL + REFRESH_S + SLACK_S
        wait_for(lambda: launcher.value("celery_queue_length", queue_name=idle) == 3, within, "3 queued")

        proxy.stop()
        failures = "celery_exporter_queue_metrics_refresh_failures_total"
        # Two failed refreshes (a refused connection gives up after kombu's retries, about 6 s each):
        # the first logged with its traceback, the next in one line.
        wait_for(lambda: launcher.value(failures) >= 2, 2 * (INTERVAL + 10) + SLACK_S, "two failed refreshes")
        assert launcher.proc.poll() is None
        median = launcher.scrape_seconds()
        assert median < SCRAPE_BOUND_S, f"median /metrics took {median * 1000:.0f} ms with the broker away"
        assert launcher.value("celery_queue_length", queue_name=idle) == 3  # the last value, still served
        log = launcher.output()
        assert log.count("Queue metrics refresh failed, serving the last values") == 1
        assert "Queue metrics refresh failed again" in log

        proxy.start()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(idle)
        wait_for(
            lambda: launcher.value("celery_queue_length", queue_name=idle) == 0,
            INTERVAL + 10 + SLACK_S,
            "the purged queue after the broker came back",
        )
        assert "Queue metrics refresh works again" in launcher.output()
    finally:
        launcher.stop()
        proxy.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(idle)
        if broker == "redis":
            forget_redis_queues(idle)
