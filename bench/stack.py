"""The bench's own copy of the bundle, started and stopped configuration by configuration.

Processes are native mode's services (native/services.py) started by native/process.py, with the
bench's app, ports (bench/state.py PORT_MAP) and state directory; every process runs in its own
process group and is stopped by pid (SIGTERM, then SIGKILL), also on errors and Ctrl-C, and the next
run stops what a killed bench left behind. A lock file keeps to one bench at a time.
"""

import fcntl
import json
import os
import shutil
import signal
import sys
import time
import urllib.parse

import requests
from kombu.exceptions import OperationalError

from bench import probes, vhost
from bench.configs import WorkerSpec
from bench.probes import http_ok, metric_sum, wait_until
from bench.state import (
    LOGS,
    NODENAME,
    PORTS,
    RUN,
    STATE,
    VHOST,
    BenchError,  # noqa: F401
    bench_argv,
    bench_target,
    node_argument,
    nodename,
    worker_process,
)
from mixin.config import Config
from mixin.durations import seconds
from native import broker as native_broker, derive, env as native_env, paths, process, services
from native.ports import PORTS as NATIVE

# The order processes are stopped in: the worker first (its last events still reach the monitors).
STOP_ORDER = ("publisher", "worker")
ONE_WORKER = WorkerSpec()  # the configurations of one worker: bench-w1, the configuration's settings


def _stop_rank(name):
    """worker-2 stops with the workers; names outside STOP_ORDER after them."""
    kind = name.split("-")[0]
    return STOP_ORDER.index(kind) if kind in STOP_ORDER else len(STOP_ORDER)


def _service(name):
    return next(s for s in services.core() if s.name == name)


class Bench:
    """Owns every process the bench starts. Use as a context manager."""

    def __init__(self, say=print, loglevel="WARNING", conf=None):
        self.say = say
        self.loglevel = loglevel
        self.conf = conf or {}
        base = native_env.build()
        self.rmq = native_env.broker_parts(base["RMQ_URL"])
        q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
        self.url = (
            f"amqp://{q(self.rmq['user'])}:{q(self.rmq['password'])}@{self.rmq['host']}:{self.rmq['port']}/{VHOST}"
        )
        self.auth = (self.rmq["user"], self.rmq["password"])
        self.env = {
            **base,
            "RMQ_URL": self.url,
            "BROKER_URL": self.url,
            "BENCH_CONF": json.dumps(self.conf),
            "WORKER_METRICS_PORT": str(PORTS["worker_metrics"]),
            "WORKER_METRICS_ADDR": "127.0.0.1",
            "FLOWER_PORT": str(PORTS["flower"]),
            "FLOWER_ADDRESS": "127.0.0.1",
            "FLOWER_BROKER_API": f"http://{q(self.rmq['user'])}:{q(self.rmq['password'])}@127.0.0.1:{native_broker.MANAGEMENT_PORT}/api/",
            "FLOWER_DB": str(STATE / "flower.db"),
            "FLOWER_PERSISTENT": "false",
            # The bench's Flower has no login, so the bench can read its API and /metrics.
            "FLOWER_BASIC_AUTH": "",
            "FLOWER_UNAUTHENTICATED_API": "true",
        }
        self.env.pop("FLOWER_AUTH", None)
        # This process publishes control messages and reads queues as the bench app does; commands
        # for the real stack (cold start) get the environment as it was.
        self.outer_env = dict(os.environ)
        os.environ.update({"RMQ_URL": self.url, "BROKER_URL": self.url, "BENCH_CONF": self.env["BENCH_CONF"]})
        self.config = None
        self.counter = None
        self.run_env = dict(self.env)
        self.workers = (ONE_WORKER,)
        self.timeline = STATE / "timeline.jsonl"
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
        for name in self.running():
            self.say(f"stopping {name} (pid {process.running_pid(name, RUN)}) left by an earlier bench")
        self.stop()
        vhost.ensure(self.auth, self.say)
        # SIGTERM/SIGHUP end the run like Ctrl-C does, so __exit__ still stops everything.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
        return self

    def __exit__(self, *exc):
        self.down()
        self._lock.close()
        return False

    # --- processes ------------------------------------------------------------------------------

    def start(self, name, argv, env):
        return process.start(name, argv, env, run=RUN, logs=LOGS)

    def pid(self, name):
        return process.running_pid(name, RUN)

    def running(self):
        return [p.stem for p in RUN.glob("*.pid") if process.running_pid(p.stem, RUN)]

    def stop(self, names=None):
        names = self.running() if names is None else names
        for name in sorted(names, key=_stop_rank):
            process.stop(name, run=RUN)

    # --- configurations -------------------------------------------------------------------------

    def up(self, config, names=0, alert_rules=None, webhook=None, before_workers=None, timeline=False):
        """Start one configuration: monitors first, then the workers, and wait until all see each other.
        alert_rules: None (real rules, no Alertmanager) or a rules directory + webhook URL for Alertmanager.
        before_workers: called once the vhost is clean and before any worker starts (a backlog).
        timeline: the workers record each task's received/started/finished times (bench/timeline.py);
        off in the throughput runs, whose CPU it would add to."""
        self.down()
        self.config = config
        self.counter = STATE / "counter.bin"
        from bench import counter

        counter.create(self.counter)
        env = {
            **self.env,
            "BENCH_CONF": json.dumps({**dict(config.conf), **self.conf}),
            "BENCH_EVENTS": "1" if config.events else "0",
            "BENCH_OFF_THE_SHELF": "1" if config.off_the_shelf else "0",
            "BENCH_NAMES": str(names),
            "BENCH_COUNTER": str(self.counter),
            "WORKER_METRICS": "1" if config.worker_metrics else "0",
            "BENCH_TIMELINE": str(self.timeline) if timeline else "",
        }
        conf = {**dict(config.conf), **self.conf}
        if "event_serializer" in conf:  # the exporter reads it from its environment
            env["EVENT_SERIALIZER"] = conf["event_serializer"]
        self.run_env = env
        self.timeline.unlink(missing_ok=True)
        if config.monitors:
            self.monitors_up(config, env, alert_rules, webhook)
        if before_workers:
            before_workers()
        self.workers_up(config, env)
        if config.worker_metrics:
            wait_until(lambda: http_ok(f"http://127.0.0.1:{PORTS['worker_metrics']}/metrics"), 30, "worker metrics")
        if config.monitors:
            wait_until(
                lambda: metric_sum(self.flower_url("/metrics"), "flower_worker_online", worker=NODENAME) == 1,
                60,
                "Flower to see the worker",
            )
            wait_until(
                lambda: metric_sum(self.exporter_url("/metrics"), "celery_worker_up") >= len(self.workers),
                60,
                "the exporter to see the workers",
            )
        if alert_rules:
            wait_until(lambda: self._targets_up(), 60, "every Prometheus target up", interval=1)
        time.sleep(2)  # let start-up chatter (mingle, first scrapes) pass

    def monitors_up(self, config, env=None, alert_rules=None, webhook=None):
        """Prometheus, Flower and the exporter of a configuration, healthy (no worker)."""
        env = env or {**self.env, "BENCH_CONF": json.dumps({**dict(config.conf), **self.conf})}
        self.config = config
        self._start_prometheus(config, alert_rules, webhook)
        self._start_monitors(config, env)
        wait_until(lambda: http_ok(self.flower_url("/healthcheck")), 60, "the bench Flower")
        wait_until(lambda: http_ok(self.exporter_url("/health")), 60, "the bench exporter")

    def workers_up(self, config, env):
        """Start every worker of the configuration at once, then wait until each answers a ping."""
        self.workers = config.workers or (ONE_WORKER,)
        for spec in self.workers:  # a stray bench worker would take tasks and skew the figures
            if self._worker_answers(nodename(spec.index)):
                raise BenchError(f"a worker named {nodename(spec.index)} already answers on vhost {VHOST}; stop it")
        for spec in self.workers:
            argv = [*self._worker_argv(env, spec), *config.worker_args]
            self.start(worker_process(spec.index), argv, self._worker_env(env, config, spec))
        for spec in self.workers:
            name = nodename(spec.index)
            wait_until(lambda: self._worker_answers(name), 60, f"worker {name}", interval=0.5)

    def _worker_env(self, env, config, spec):
        conf = json.loads(env["BENCH_CONF"])
        if spec.prefetch is not None:
            conf["worker_prefetch_multiplier"] = spec.prefetch
        if spec.concurrency is not None:
            conf["worker_concurrency"] = spec.concurrency
        out = {**env, **dict(config.worker_env), "BENCH_CONF": json.dumps(conf)}
        if spec.index > 1:  # one worker /metrics port: worker 1's
            out["WORKER_METRICS"] = "0"
        return out

    def _worker_argv(self, env, spec=ONE_WORKER):
        """Native worker 1's command line with the bench's app, node name, queues and log level."""
        argv = bench_argv(services.worker(1).argv(env))
        argv[argv.index("-n") + 1] = node_argument(spec.index)
        if spec.queues:
            argv += ["-Q", spec.queues]
        return [f"--loglevel={self.loglevel}" if a.startswith("--loglevel=") else a for a in argv]

    def _start_monitors(self, config, env):
        nice = ["nice", "-n", str(config.nice)] if config.nice else []  # `nice` execs: same pid
        if config.off_the_shelf:
            # As their docs start them: `celery flower` and `celery-exporter --broker-url`, no
            # options but where to listen; no FLOWER_* settings of the bundle's.
            plain = {k: v for k, v in env.items() if not k.startswith("FLOWER_")}
            flower = [
                paths.VENV_BIN / "celery",
                "-A",
                "bench.tasks",
                "flower",
                "--address=127.0.0.1",
                f"--port={PORTS['flower']}",
            ]
            exporter = [
                paths.EXPORTER_VENV_BIN / "python",
                "-c",
                "from src.cli import cli; cli()",
                f"--broker-url={self.url}",
                "--host=127.0.0.1",
                f"--port={PORTS['exporter']}",
            ]
            self.start("flower", [*nice, *flower, *config.flower_args], plain)
            self.start("exporter", [*nice, *exporter, *config.exporter_args], plain)
            return
        exporter_env = {**env, "RMQ_URL": self.url, "BROKER_URL": self.url}
        self.start("flower", [*nice, *bench_argv(_service("flower").argv(env)), *config.flower_args], env)
        self.start(
            "exporter", [*nice, *bench_argv(_service("celery_exporter").argv(exporter_env)), *config.exporter_args], env
        )

    def down(self):
        """Stop the configuration, then drop what it left in the vhost."""
        self.stop()
        self.config = None
        try:
            from bench import tasks

            vhost.clean(tasks.app, self.auth)
        except Exception as exc:  # cleaning is best effort; the next up() tries again
            self.say(f"warning: could not clean vhost {VHOST}: {exc}")

    def _worker_answers(self, name=NODENAME):
        from bench import tasks

        try:
            return bool(tasks.app.control.ping(destination=[name], timeout=0.5))
        except (OSError, OperationalError):
            # The broker closes a pooled connection left idle past its heartbeat (long-task runs
            # leave it minutes unused): drop the pool, so that the next ping connects afresh.
            tasks.app.pool.force_close_all()
            return False

    def _targets_up(self):
        r = requests.get(self.prometheus_url("/api/v1/targets"), timeout=5).json()
        active = r["data"]["activeTargets"]
        return active and all(t["health"] == "up" for t in active)

    def _start_prometheus(self, config, alert_rules, webhook):
        cfg = derive.prometheus_config(paths.REPO / "prometheus" / "prometheus.yml", workers=1, vhost=VHOST)
        names = Config().jobs
        jobs = []
        for job in cfg["scrape_configs"]:
            name = job["job_name"]
            if (
                name == names.app
                or (name == names.alertmanager and not alert_rules)
                or (name == names.worker and not config.worker_metrics)
            ):
                continue
            for sc in job.get("static_configs", []):
                sc["targets"] = [bench_target(t) for t in sc["targets"]]
            if config.scrape_interval:
                job.pop("scrape_interval", None)
                job.pop("scrape_timeout", None)
            jobs.append(job)
        cfg["scrape_configs"] = jobs
        if config.scrape_interval:
            interval = seconds(config.scrape_interval)
            cfg.setdefault("global", {}).update(
                scrape_interval=config.scrape_interval, scrape_timeout=f"{min(10, max(1, int(interval * 0.8)))}s"
            )
        if config.off_the_shelf:
            cfg["rule_files"] = []  # the docs' setup has no rules
        if alert_rules:
            cfg["rule_files"] = [str(alert_rules / "*.yml")]
            for am in cfg["alerting"]["alertmanagers"]:
                for sc in am["static_configs"]:
                    sc["targets"] = [bench_target(t) for t in sc["targets"]]
            self._start_alertmanager(webhook)
        else:
            cfg.pop("alerting", None)
        derive.write_yaml(cfg, STATE / "prometheus.yml")
        data = STATE / "prometheus-data"
        shutil.rmtree(data, ignore_errors=True)  # every configuration starts from an empty TSDB
        self.start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={STATE / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{PORTS['prometheus']}",
            ],
            self.env,
        )
        wait_until(lambda: http_ok(self.prometheus_url("/-/ready")), 60, "the bench Prometheus")

    def _start_alertmanager(self, webhook):
        text = derive.alertmanager_config(paths.REPO / "alertmanager" / "alertmanager.yml", env={})
        # The bundle's receiver -> ours.
        text = text.replace(f"http://{derive.HOST}:{NATIVE['app']}/api/alerts", webhook)
        (STATE / "alertmanager.yml").write_text(text)
        data = STATE / "alertmanager-data"
        shutil.rmtree(data, ignore_errors=True)
        self.start(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={STATE / 'alertmanager.yml'}",
                f"--storage.path={data}",
                f"--web.listen-address=127.0.0.1:{PORTS['alertmanager']}",
                "--cluster.listen-address=",
            ],
            self.env,
        )
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
        beam = probes.listener_pid(self.rmq["port"])
        workers = [probes.cpu_seconds(self.pid(worker_process(s.index)), tree=True) for s in self.workers]
        snap = {
            "worker": None if None in workers else sum(workers),
            "broker": beam and probes.cpu_seconds(beam),
        }
        for name in ("flower", "exporter", "prometheus"):
            pid = self.pid(name)
            if pid:
                snap[name] = probes.cpu_seconds(pid)
        return snap

    def flower_succeeded(self):
        return metric_sum(self.flower_url("/metrics"), "flower_events_total", type="task-succeeded")

    def exporter_succeeded(self):
        return metric_sum(self.exporter_url("/metrics"), "celery_task_succeeded_total")

    def vhost_queues(self):
        return vhost.queues(self.auth)

    def event_queue_owners(self, timeout=20):
        """{'flower': queue, 'exporter': queue}: matched by the TCP port of each queue's consumer."""
        return vhost.event_queue_owners(self.auth, {n: self.pid(n) for n in ("flower", "exporter")}, timeout)

    def depths(self):
        from bench import tasks

        return vhost.Depths(tasks.app)
