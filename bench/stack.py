"""The bench's own copy of the bundle, started and stopped configuration by configuration.

Isolation from a running native stack: RabbitMQ vhost `bench` (same broker, same user), its own ports
(PORTS), state and logs under .native/bench/, worker node name bench-w1@host. Every process runs in its
own process group and is stopped by PID (SIGTERM, then SIGKILL), also on errors and Ctrl-C; pid files
let the next run stop what a killed bench left behind. A lock file keeps to one bench at a time.
"""
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

from native import broker as native_broker, derive, env as native_env, paths

STATE = paths.REPO / ".native" / "bench"
RUN, LOGS = STATE / "run", STATE / "logs"
VHOST = "bench"
PORTS = {"flower": 15556, "exporter": 19808, "prometheus": 19090, "alertmanager": 19093, "worker_metrics": 19191}
# The bundle's ports in prometheus/prometheus.yml -> the bench's. The app is not run (tasks are
# published directly); the RabbitMQ metrics (15692) are the shared broker's, read-only.
PORT_MAP = {"9090": PORTS["prometheus"], "9093": PORTS["alertmanager"], "5555": PORTS["flower"],
            "9808": PORTS["exporter"], "9191": PORTS["worker_metrics"]}
NODE = "bench-w1"
HOST = socket.gethostname()
NODENAME = f"{NODE}@{HOST}"
MGMT = f"http://127.0.0.1:{native_broker.MANAGEMENT_PORT}/api"


class BenchError(Exception):
    """A problem the user can act on: printed as one line, exit 1."""


@dataclass(frozen=True)
class Config:
    name: str
    events: bool = False         # task events (worker_send_task_events + task_send_sent_event)
    monitors: bool = False       # Flower + exporter + Prometheus scraping them
    worker_metrics: bool = False  # our worker /metrics (WORKER_METRICS=1), scraped by Prometheus
    label: str = ""
    conf: tuple = ()             # Celery settings this configuration changes, as (name, value) pairs
    nice: int = 0                # nice level of Flower and the exporter (a tuning experiment)


CONFIGS = {c.name: c for c in (
    Config("bare", label="bare Celery (events off, no monitors)"),
    Config("events", events=True, label="task events on, nobody consuming"),
    Config("full", events=True, monitors=True, worker_metrics=True,
           label="full bundle: events + Flower + exporter + Prometheus + worker metrics"),
    Config("full_wm_off", events=True, monitors=True, label="full bundle with WORKER_METRICS=0"),
    # Not in the default run: the reference figures' baseline, Celery's defaults for what the bundle
    # changes for reliability (ack after the task ran, prefetch 1).
    Config("stock", label="bare with Celery's defaults (early ack, prefetch 4)",
           conf=(("task_acks_late", False), ("task_reject_on_worker_lost", False), ("worker_prefetch_multiplier", 4))),
)}


def variant(spec):
    """`NAME:KEY=VALUE[,KEY=VALUE...]` -> the full bundle with those changes, named full+NAME.
    KEY is a Celery setting (JSON value) or `nice` (Flower's and the exporter's nice level)."""
    name, sep, changes = spec.partition(":")
    if not sep or not name.strip() or not changes.strip():
        raise ValueError(f"must be NAME:SETTING=VALUE[,SETTING=VALUE], got {spec!r}")
    conf, nice = [], 0
    for change in changes.split(","):
        key, eq, value = change.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"must be NAME:SETTING=VALUE[,SETTING=VALUE], got {spec!r}")
        try:
            value = json.loads(value)
        except ValueError:
            pass
        if key.strip() == "nice":
            if not isinstance(value, int) or not 0 <= value <= 19:
                raise ValueError(f"nice must be 0..19, got {value!r}")
            nice = value
        else:
            conf.append((key.strip(), value))
    return Config(f"full+{name.strip()}", events=True, monitors=True, worker_metrics=True,
                  label=f"full bundle with {changes.strip()}", conf=tuple(conf), nice=nice)


def cpu_seconds(pid, tree=False):
    """user+system CPU of a process; tree adds its live children and the reaped ones."""
    try:
        proc = psutil.Process(pid)
        t = proc.cpu_times()
        total = t.user + t.system
        if tree:
            total += t.children_user + t.children_system
            for child in proc.children(recursive=True):
                try:
                    c = child.cpu_times()
                    total += c.user + c.system
                except psutil.NoSuchProcess:
                    pass
        return total
    except psutil.NoSuchProcess:
        return None


def rss_bytes(pid):
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.NoSuchProcess:
        return None


def broker_pid(port):
    """RabbitMQ's beam.smp: the process listening on the AMQP port (shared with the lead's stack)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def metric_sum(url, sample, timeout=15, **labels):
    """Sum of the samples named `sample` whose labels match, from a /metrics page."""
    text = requests.get(url, timeout=timeout).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def wait_until(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (requests.RequestException, ValueError, OSError):
            pass
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what} (logs in {LOGS})")


def http_ok(url):
    return requests.get(url, timeout=2).status_code == 200


class Bench:
    """Owns every process the bench starts. Use as a context manager."""

    def __init__(self, say=print, loglevel="WARNING", conf=None):
        self.say = say
        self.loglevel = loglevel
        self.conf = conf or {}
        base = native_env.build()
        self.rmq = native_env.broker_parts(base["RMQ_URL"])
        q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
        self.url = f"amqp://{q(self.rmq['user'])}:{q(self.rmq['password'])}@{self.rmq['host']}:{self.rmq['port']}/{VHOST}"
        self.auth = (self.rmq["user"], self.rmq["password"])
        self.env = {**base, "RMQ_URL": self.url, "BENCH_CONF": json.dumps(self.conf),
                    "WORKER_METRICS_PORT": str(PORTS["worker_metrics"]), "WORKER_METRICS_ADDR": "127.0.0.1",
                    "FLOWER_PORT": str(PORTS["flower"]), "FLOWER_ADDRESS": "127.0.0.1",
                    "FLOWER_BROKER_API": f"http://{q(self.rmq['user'])}:{q(self.rmq['password'])}@127.0.0.1:{native_broker.MANAGEMENT_PORT}/api/",
                    "FLOWER_DB": str(STATE / "flower.db"), "FLOWER_PERSISTENT": "false",
                    # The bench's Flower has no login, so the bench can read its API and /metrics.
                    "FLOWER_BASIC_AUTH": "", "FLOWER_UNAUTHENTICATED_API": "true"}
        self.env.pop("FLOWER_AUTH", None)
        # This process publishes control messages and reads queues as the bench app does; commands
        # for the real stack (cold start) get the environment as it was.
        self.outer_env = dict(os.environ)
        os.environ.update({"RMQ_URL": self.url, "BENCH_CONF": self.env["BENCH_CONF"]})
        self.procs = {}   # name -> Popen
        self.config = None
        self.counter = None
        self._lock = None

    # --- lifetime -------------------------------------------------------------------------------

    def __enter__(self):
        for d in (RUN, LOGS):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = open(STATE / "bench.lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchError(f"another bench is running (lock {STATE / 'bench.lock'})") from None
        self._stop_leftovers()
        self._ensure_vhost()
        # SIGTERM/SIGHUP end the run like Ctrl-C does, so __exit__ still stops everything.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
        return self

    def __exit__(self, *exc):
        self.down()
        self._lock.close()
        return False

    def _stop_leftovers(self):
        """Stop what a killed bench left running: pid files record the pid and a cmdline marker."""
        for pidfile in RUN.glob("*.pid"):
            try:
                pid, marker = pidfile.read_text().split("\n", 1)
                cmdline = " ".join(psutil.Process(int(pid)).cmdline())
                if marker.strip() and marker.strip() in cmdline:
                    self.say(f"stopping {pidfile.stem} (pid {pid}) left by an earlier bench")
                    _stop_group(int(pid))
            except (ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
                pass
            pidfile.unlink(missing_ok=True)

    def _ensure_vhost(self):
        try:
            r = requests.get(f"{MGMT}/vhosts", auth=self.auth, timeout=10)
        except requests.RequestException:
            raise BenchError(f"RabbitMQ's management API at {MGMT} is unreachable; is the broker up (make up)?") from None
        if r.status_code != 200:
            raise BenchError(f"RabbitMQ management API at {MGMT} answered {r.status_code} for {self.rmq['user']!r}; is the broker up (make up)?")
        if VHOST in [v["name"] for v in r.json()]:
            return
        self.say(f"rabbitmq: creating vhost {VHOST!r} for {self.rmq['user']!r} (isolated from vhost /)")
        for args in (["add_vhost", VHOST], ["set_permissions", "-p", VHOST, self.rmq["user"], ".*", ".*", ".*"]):
            # native/broker.py knows whether the node is ours (its env) or the system's.
            out = native_broker.rabbitmqctl(args, check=False)
            if out.returncode != 0 and "already" not in (out.stderr + out.stdout):
                raise BenchError(f"rabbitmqctl {' '.join(args)} failed: {out.stderr.strip() or out.stdout.strip()}")

    # --- processes ------------------------------------------------------------------------------

    def start(self, name, argv, env, marker):
        log = open(LOGS / f"{name}.log", "ab")
        log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(map(str, argv))}\n".encode())
        log.flush()
        proc = subprocess.Popen([str(a) for a in argv], env=env, cwd=paths.REPO, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs[name] = proc
        (RUN / f"{name}.pid").write_text(f"{proc.pid}\n{marker}")
        return proc

    def pid(self, name):
        proc = self.procs.get(name)
        return proc.pid if proc else None

    def stop(self, names=None):
        names = list(self.procs) if names is None else [n for n in names if n in self.procs]
        for name in names:
            _signal_group(self.procs[name].pid, signal.SIGTERM)
        for name in names:
            proc = self.procs.pop(name)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc.pid, signal.SIGKILL)  # the leader and anything left in its group
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            (RUN / f"{name}.pid").unlink(missing_ok=True)

    # --- configurations -------------------------------------------------------------------------

    def up(self, config, names=0, alert_rules=None, webhook=None):
        """Start one configuration: monitors first, then the worker, and wait until all see each other.
        alert_rules: None (real rules, no Alertmanager) or a rules directory + webhook URL for Alertmanager."""
        self.down()
        self.config = config
        self.counter = STATE / "counter.bin"
        from bench import counter
        counter.create(self.counter)
        env = {**self.env, "BENCH_CONF": json.dumps({**dict(config.conf), **self.conf}),
               "BENCH_EVENTS": "1" if config.events else "0", "BENCH_NAMES": str(names),
               "BENCH_COUNTER": str(self.counter), "WORKER_METRICS": "1" if config.worker_metrics else "0"}
        self.run_env = env
        if config.monitors:
            nice = ["nice", "-n", str(config.nice)] if config.nice else []  # `nice` execs: same pid
            self._start_prometheus(config, alert_rules, webhook)
            self.start("flower", [*nice, paths.VENV_BIN / "celery", "-A", "bench.tasks", "flower",
                                  "--conf=worker/flowerconfig.py"], env, "bench.tasks flower")
            self.start("exporter", [*nice, paths.EXPORTER_VENV_BIN / "python", "exporter/run_exporter.py",
                                    f"--broker-url={self.url}", "--host=127.0.0.1", f"--port={PORTS['exporter']}",
                                    "--retry-interval=5", "--queues=celery"], env, f"--port={PORTS['exporter']}")
            wait_until(lambda: http_ok(self.flower_url("/healthcheck")), 60, "the bench Flower")
            wait_until(lambda: http_ok(self.exporter_url("/health")), 60, "the bench exporter")
        if self._worker_answers():  # a stray bench worker would take tasks and skew the figures
            raise BenchError(f"a worker named {NODENAME} already answers on vhost {VHOST}; stop it first")
        self.start("worker", [paths.VENV_BIN / "celery", "-A", "bench.tasks", "worker", "-n", f"{NODE}@%h",
                              f"--loglevel={self.loglevel}"], env, f"-n {NODE}@%h")
        wait_until(self._worker_answers, 60, f"worker {NODENAME}", interval=0.5)
        if config.worker_metrics:
            wait_until(lambda: http_ok(f"http://127.0.0.1:{PORTS['worker_metrics']}/metrics"), 30, "worker metrics")
        if config.monitors:
            wait_until(lambda: metric_sum(self.flower_url("/metrics"), "flower_worker_online", worker=NODENAME) == 1,
                       60, "Flower to see the worker")
            wait_until(lambda: metric_sum(self.exporter_url("/metrics"), "celery_worker_up", hostname=HOST) >= 1,
                       60, "the exporter to see the worker")
        if alert_rules:
            wait_until(lambda: self._targets_up(), 60, "every Prometheus target up", interval=1)
        time.sleep(2)  # as the anchors did: let start-up chatter (mingle, first scrapes) pass

    def down(self):
        """Stop the configuration, then drop what it left in the vhost (event queues outlive their
        consumer for event_queue_expires and would keep receiving events in the next run)."""
        if self.procs:
            worker = [n for n in self.procs if n == "worker"]
            self.stop(worker)
            self.stop()
        self.config = None
        try:
            self.clean_vhost()
        except Exception as exc:  # cleaning is best effort; the next up() tries again
            self.say(f"warning: could not clean vhost {VHOST}: {exc}")

    def _worker_answers(self):
        from bench import tasks
        return bool(tasks.app.control.ping(destination=[NODENAME], timeout=0.5))

    def _targets_up(self):
        r = requests.get(self.prometheus_url("/api/v1/targets"), timeout=5).json()
        active = r["data"]["activeTargets"]
        return active and all(t["health"] == "up" for t in active)

    def _start_prometheus(self, config, alert_rules, webhook):
        cfg = derive.prometheus_config(paths.REPO / "prometheus" / "prometheus.yml", workers=1)
        jobs = []
        for job in cfg["scrape_configs"]:
            name = job["job_name"]
            if name == "app" or (name == "alertmanager" and not alert_rules) \
                    or (name == "celery_worker" and not config.worker_metrics):
                continue
            for sc in job.get("static_configs", []):
                sc["targets"] = [_bench_target(t) for t in sc["targets"]]
            jobs.append(job)
        cfg["scrape_configs"] = jobs
        if alert_rules:
            cfg["rule_files"] = [str(alert_rules / "*.yml")]
            for am in cfg["alerting"]["alertmanagers"]:
                for sc in am["static_configs"]:
                    sc["targets"] = [_bench_target(t) for t in sc["targets"]]
            self._start_alertmanager(webhook)
        else:
            cfg.pop("alerting", None)
        derive.write_yaml(cfg, STATE / "prometheus.yml")
        data = STATE / "prometheus-data"
        shutil.rmtree(data, ignore_errors=True)  # every configuration starts from an empty TSDB
        self.start("prometheus", ["prometheus", f"--config.file={STATE / 'prometheus.yml'}",
                                  f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{PORTS['prometheus']}"],
                   self.env, f"--storage.tsdb.path={data}")
        wait_until(lambda: http_ok(self.prometheus_url("/-/ready")), 60, "the bench Prometheus")

    def _start_alertmanager(self, webhook):
        text = derive.alertmanager_config(paths.REPO / "alertmanager" / "alertmanager.yml", env={})
        text = text.replace("http://127.0.0.1:8080/api/alerts", webhook)  # the bundle's receiver -> ours
        (STATE / "alertmanager.yml").write_text(text)
        data = STATE / "alertmanager-data"
        shutil.rmtree(data, ignore_errors=True)
        self.start("alertmanager", ["prometheus-alertmanager", f"--config.file={STATE / 'alertmanager.yml'}",
                                    f"--storage.path={data}", f"--web.listen-address=127.0.0.1:{PORTS['alertmanager']}",
                                    "--cluster.listen-address="], self.env, f"--storage.path={data}")
        wait_until(lambda: http_ok(f"http://127.0.0.1:{PORTS['alertmanager']}/-/ready"), 60, "the bench Alertmanager")

    # --- reading the configuration ---------------------------------------------------------------

    def flower_url(self, path):
        return f"http://127.0.0.1:{PORTS['flower']}{path}"

    def exporter_url(self, path):
        return f"http://127.0.0.1:{PORTS['exporter']}{path}"

    def prometheus_url(self, path):
        return f"http://127.0.0.1:{PORTS['prometheus']}{path}"

    def cpu(self):
        """CPU seconds now of every process that matters in this configuration."""
        beam = broker_pid(self.rmq["port"])
        snap = {"worker": cpu_seconds(self.pid("worker"), tree=True), "broker": beam and cpu_seconds(beam)}
        for name in ("flower", "exporter", "prometheus"):
            if name in self.procs:
                snap[name] = cpu_seconds(self.pid(name))
        return snap

    def flower_succeeded(self):
        return metric_sum(self.flower_url("/metrics"), "flower_events_total", type="task-succeeded")

    def exporter_succeeded(self):
        return metric_sum(self.exporter_url("/metrics"), "celery_task_succeeded_total")

    def vhost_queues(self):
        r = requests.get(f"{MGMT}/queues/{VHOST}", auth=self.auth, timeout=10,
                         params={"columns": "name,messages,consumers"})
        r.raise_for_status()
        return r.json()

    def event_queue_owners(self, timeout=20):
        """{'flower': queue, 'exporter': queue}: matched by the TCP port of each queue's consumer."""
        ports = {}
        for name in ("flower", "exporter"):
            ports[name] = {c.laddr.port for c in psutil.Process(self.pid(name)).net_connections("tcp")}
        owners = {}

        def find():
            for q in self.vhost_queues():
                if not q["name"].startswith("celeryev."):
                    continue
                detail = requests.get(f"{MGMT}/queues/{VHOST}/{urllib.parse.quote(q['name'], safe='')}",
                                      auth=self.auth, timeout=10).json()
                for consumer in detail.get("consumer_details", []):
                    peer = consumer.get("channel_details", {}).get("peer_port")
                    for owner, local in ports.items():
                        if peer in local:
                            owners[owner] = q["name"]
            return len(owners) == 2
        wait_until(find, timeout, "the monitors' event queues in the management API", interval=1)
        return owners

    def clean_vhost(self):
        """Delete leftover event queues and purge the task queue (AMQP, exact and immediate)."""
        from bench import tasks
        names = [q["name"] for q in self.vhost_queues() if q["name"].startswith("celeryev.")]
        with tasks.app.connection_for_write() as conn:
            for name in names:
                conn.default_channel.queue_delete(name)
            try:
                conn.default_channel.queue_purge("celery")
            except Exception:
                pass  # no task queue yet


class Depths:
    """Exact queue depths through a passive declare on one AMQP connection (the management API's
    figures are refreshed only every few seconds)."""

    def __init__(self):
        from bench import tasks
        self.conn = tasks.app.connection_for_write()
        self.conn.ensure_connection(max_retries=3)

    def __call__(self, queue):
        try:
            return self.conn.default_channel.queue_declare(queue, passive=True).message_count
        except Exception:
            self.conn.close()
            self.conn = self.conn.clone()
            return None

    def close(self):
        self.conn.close()


class Publisher:
    """`python -m bench.publish` as a child process (own process group, stopped by the Bench)."""

    def __init__(self, bench, *args):
        with open(LOGS / "publisher.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.publish", *map(str, args)], cwd=paths.REPO,
                                         env=bench.run_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True, start_new_session=True)
        bench.procs["publisher"] = self.proc
        (RUN / "publisher.pid").write_text(f"{self.proc.pid}\nbench.publish")
        self.bench = bench
        self.ready = self._line()

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"the publisher exited early (see {LOGS / 'publisher.log'})")
        return json.loads(line)

    def go(self):
        """Start publishing; returns the time of the first publish."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self._line()["t0"]

    def result(self, timeout=None):
        line = self._line()
        self.proc.wait(timeout)
        self.bench.procs.pop("publisher", None)
        (RUN / "publisher.pid").unlink(missing_ok=True)
        return line

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)  # it stops publishing and prints its summary
        return self.result(30)


def _bench_target(target):
    host, _, port = target.rpartition(":")
    return f"{host}:{PORT_MAP.get(port, port)}"


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_group(pid):
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and psutil.pid_exists(pid):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    _signal_group(pid, signal.SIGKILL)
