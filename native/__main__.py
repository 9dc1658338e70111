"""`python -m native up|down|status|logs` — what `make up/down/status/logs` run without Docker."""

import argparse
import concurrent.futures
import enum
import os
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

try:  # NATIVE_INSTANCE and NATIVE_PORT_OFFSET are read on import: a bad one ends here, in one line.
    from native import paths, ports  # noqa: F401
except ValueError as exc:
    sys.exit(f"error: {exc}")

from mixin import profiles, rules  # noqa: E402
from mixin.config import Config  # noqa: E402
from mixin.prometheus import scrape_configs_for  # noqa: E402
from native import broker, derive, dotenv, poll, process, services  # noqa: E402
from native import env as envmod  # noqa: E402
from native.ports import PORTS  # noqa: E402

READY_TIMEOUT = 90.0


def say(message):
    print(message, flush=True)


class Start(enum.Enum):
    """What start_service did."""

    STARTED = "started"
    RUNNING = "already running"
    SKIPPED = "skipped"


def _snapshot(directory):
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def generate_configs(env, workers, alert_profile="standard"):
    """Write the derived configs; returns the names of the servers whose config changed."""
    paths.ensure()
    before = _snapshot(paths.GENERATED)
    config = derive.prometheus_config(
        paths.REPO / "prometheus" / "prometheus.yml",
        workers,
        env.get("NATIVE_CLUSTER", ""),
        env.get("NATIVE_REMOTE_WRITE", ""),
        vhost=envmod.broker_parts(env["BROKER_URL"])["vhost"] if env.get("BROKER", "rabbitmq") == "rabbitmq" else "",
    )
    scrape_configs_for(
        config,
        env.get("BROKER", "rabbitmq"),
        Config(),
        exporter_host=derive.HOST,
        exporter_port=PORTS["redis_exporter"],
    )
    rules_dir = paths.GENERATED / "rules"
    shutil.rmtree(rules_dir, ignore_errors=True)
    if alert_profile != "standard":
        # Live tests: the same rules rendered by the mixin for a profile with shorter windows.
        try:
            cfg = profiles.apply(alert_profile)
        except ValueError as exc:
            raise ValueError(f"ALERT_PROFILE: {exc}") from None
        rules.write(rules_dir / rules.RULES_PATH.name, cfg, f"the bundle's configuration, profile {alert_profile}")
        config["rule_files"] = [str(rules_dir / "*.yml")]
    derive.write_yaml(config, paths.GENERATED / "prometheus.yml")
    (paths.GENERATED / "alertmanager.yml").write_text(
        derive.alertmanager_config(paths.REPO / "alertmanager" / "alertmanager.yml", env, paths.GENERATED / "secrets")
    )
    shutil.rmtree(paths.GENERATED / "grafana", ignore_errors=True)
    derive.grafana_provisioning(paths.REPO / "grafana" / "provisioning", paths.GENERATED / "grafana")
    after = _snapshot(paths.GENERATED)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    return {
        name
        for name, prefix in (
            ("prometheus", "prometheus.yml"),
            ("prometheus", "rules"),
            ("alertmanager", "alertmanager.yml"),
            ("alertmanager", "secrets"),
        )
        if any(p.relative_to(paths.GENERATED).parts[0] == prefix for p in changed)
    }


def running_workers():
    return sorted(i for i in map(services.worker_index, process.owned()) if i is not None)


def wanted(workers, kind="rabbitmq"):
    return services.core(kind) + [services.worker(i) for i in range(1, workers + 1)]


def start_service(svc, env):
    """Start `svc` unless it runs already or cannot run here; says what happened, returns a Start."""
    if process.running_pid(svc.name):
        say(f"{svc.name}: already running")
        return Start.RUNNING
    if svc.healthy(env):
        raise RuntimeError(f"{svc.name}: something else already answers on {svc.health}; stop it first")
    reason = svc.available()
    if reason:
        say(f"{svc.name}: skipped, {reason}")
        return Start.SKIPPED
    process.start(svc.name, svc.argv(env), svc.environment(env))
    say(f"{svc.name}: started")
    return Start.STARTED


def wait_healthy(svc, env, timeout=READY_TIMEOUT):
    """True once `svc` answers its health check; False if it exits or stays unhealthy."""

    def state():
        if svc.healthy(env):
            return "healthy"
        return None if process.running_pid(svc.name) else "exited"

    try:
        return poll.until(state, timeout, 0.25, f"{svc.name} to be healthy") == "healthy"
    except poll.TimedOut:
        return False


RELOAD = {name: f"http://127.0.0.1:{PORTS[name]}/-/reload" for name in ("prometheus", "alertmanager")}


def reload(names):
    """Reload running servers whose config changed, and only those: a reload while an alert resolves
    can drop its resolved notification (Prometheus re-creates its notifier)."""
    import requests

    for name in sorted(names):
        if process.running_pid(name):
            try:
                requests.post(RELOAD[name], timeout=10).raise_for_status()
                say(f"{name}: configuration changed, reloaded")
            except requests.RequestException as exc:
                say(f"{name}: reload failed ({exc}); restart it with make down && make up")


def up(workers):
    t0 = time.monotonic()
    paths.ensure()  # state directories first: starting our own broker marks it there
    dotenv.ensure(say)
    env = envmod.build()
    redis = urlsplit(env["REDIS_URL"])
    if env["BROKER"] == "redis":
        broker.ensure_redis_broker(env["BROKER_URL"], say)
    else:
        if urlsplit(env["BROKER_URL"]).hostname not in ("127.0.0.1", "localhost"):
            broker.ensure_reachable(env["BROKER_URL"], say)
        broker.ensure_rabbitmq(envmod.broker_parts(env["BROKER_URL"]), say)
        broker.ensure_vhost(envmod.broker_parts(env["BROKER_URL"]), say)
    broker.ensure_redis(redis.hostname or "127.0.0.1", redis.port or PORTS["redis"], say)
    changed = generate_configs(env, workers, env.get("ALERT_PROFILE", "standard"))
    # Scale down: stop workers beyond the wanted number.
    for index in running_workers():
        if index > workers:
            name = services.worker(index).name
            process.stop(name)
            say(f"{name}: stopped (scaling to {workers})")
    svcs = wanted(workers, env["BROKER"])
    results, fresh = {}, set()
    for phase in ([s for s in svcs if s.early], [s for s in svcs if not s.early]):
        started = []
        for svc in phase:
            outcome = start_service(svc, env)
            if outcome is not Start.SKIPPED:
                started.append(svc)
            if outcome is Start.STARTED:
                fresh.add(svc.name)
        with concurrent.futures.ThreadPoolExecutor(len(started) or 1) as pool:
            results.update(
                zip([s.name for s in started], pool.map(lambda s: wait_healthy(s, env), started), strict=True)
            )
    reload(changed - fresh)  # e.g. a changed worker count, when Prometheus was already running
    failed = [name for name, ok in results.items() if not ok]
    elapsed = time.monotonic() - t0
    print_table(svcs, env)
    if failed:
        say(f"not healthy after {READY_TIMEOUT:.0f}s: {', '.join(failed)} (logs in {paths.LOGS})")
        return 1
    say(f"stack ready in {elapsed:.1f}s with {workers} worker(s). Logs: make logs; stop: make down")
    return 0


def down():
    stopped = []
    names = process.owned()
    # Workers first (a warm shutdown lets running tasks finish or be requeued), the rest in parallel.
    workers = [n for n in names if services.worker_index(n) is not None]
    for name in workers:
        process.stop(name)
        stopped.append(name)
    rest = [n for n in names if n not in workers]
    with concurrent.futures.ThreadPoolExecutor(len(rest) or 1) as pool:
        for name, ok in zip(rest, pool.map(process.stop, rest), strict=True):
            if ok:
                stopped.append(name)
    if broker.stop_own_rabbitmq(say):
        stopped.append("rabbitmq")
    say("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def print_table(svcs, env):
    rows = [("service", "state", "url")]
    for svc in svcs:
        reason = svc.available()
        if reason:
            rows.append((svc.name, "not run", reason))
            continue
        pid = process.running_pid(svc.name)
        health = svc.healthy(env)
        state = "healthy" if health else ("starting/unhealthy" if pid else "stopped")
        rows.append((svc.name, state, svc.url))
    if env.get("BROKER") == "redis":
        where = urlsplit(env["BROKER_URL"])
        rows.append(
            (
                "redis broker",
                "healthy" if broker.listening(where.hostname or "127.0.0.1", where.port or PORTS["redis"]) else "down",
                broker.redact(env["BROKER_URL"]),
            )
        )
    else:
        rows.append(
            (
                "rabbitmq",
                "healthy" if broker.listening("127.0.0.1", PORTS["rabbitmq"]) else "down",
                f"http://localhost:{PORTS['rabbitmq_management']} (management UI)",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def status():
    env = envmod.build()
    workers = running_workers()
    print_table(services.core(env["BROKER"]) + [services.worker(i) for i in workers], env)
    return 0


def logs(names, follow):
    files = sorted(paths.LOGS.glob("*.log")) if not names else [process.logfile(n) for n in names]
    missing = [str(f) for f in files if not f.exists()]
    if missing or not files:
        say("no logs yet: " + (", ".join(missing) or str(paths.LOGS)))
        return 1
    cmd = ["tail", "-n", "50"] + (["-F"] if follow else []) + [str(f) for f in files]
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"WORKERS must be a whole number, got {text!r}") from None
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"WORKERS must be between 1 and 16, got {value}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m native", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the stack (idempotent; scales workers)")
    p_up.add_argument("--workers", type=positive_int, default=os.environ.get("WORKERS") or "1")
    sub.add_parser("down", help="stop what native mode started")
    sub.add_parser("init-env", help="create .env with random secrets if it does not exist")
    sub.add_parser("status", help="health of each service")
    p_logs = sub.add_parser("logs", help="tail the logs")
    p_logs.add_argument("services", nargs="*")
    p_logs.add_argument("--no-follow", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return up(args.workers)
        if args.command == "down":
            return down()
        if args.command == "init-env":
            dotenv.ensure(say)
            return 0
        if args.command == "status":
            return status()
        return logs(args.services, not args.no_follow)
    except (RuntimeError, ValueError, subprocess.SubprocessError, OSError) as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
