"""`python -m native up|down|status|logs` — what `make up/down/status/logs` run without Docker."""
import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

from mixin import profiles, rules
from native import broker, derive, dotenv, env as envmod, paths, process, services

READY_TIMEOUT = 90.0


def say(message):
    print(message, flush=True)


def flower_auth(env):
    basic = (env.get("FLOWER_BASIC_AUTH") or "").split(",")[0]
    return tuple(basic.split(":", 1)) if ":" in basic else None


def _snapshot(directory):
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def generate_configs(env, workers, alert_profile="standard"):
    """Write the derived configs; returns the names of the servers whose config changed."""
    paths.ensure()
    before = _snapshot(paths.GENERATED)
    config = derive.prometheus_config(paths.REPO / "prometheus" / "prometheus.yml", workers)
    broker.scrape_configs_for(config, env.get("BROKER", "rabbitmq"), exporter_host=derive.HOST)
    rules_dir = paths.GENERATED / "rules"
    shutil.rmtree(rules_dir, ignore_errors=True)
    if alert_profile != "standard":
        # Live tests: the same rules rendered by the mixin for a profile with shorter windows.
        try:
            profile = profiles.get(alert_profile)
        except ValueError as exc:
            raise ValueError(f"ALERT_PROFILE: {exc}") from None
        rules.generate_rules(rules_dir / rules.RULES_PATH.name, profile)
        config["rule_files"] = [str(rules_dir / "*.yml")]
    derive.write_yaml(config, paths.GENERATED / "prometheus.yml")
    (paths.GENERATED / "alertmanager.yml").write_text(derive.alertmanager_config(
        paths.REPO / "alertmanager" / "alertmanager.yml", env, paths.GENERATED / "secrets"))
    shutil.rmtree(paths.GENERATED / "grafana", ignore_errors=True)
    derive.grafana_provisioning(paths.REPO / "grafana" / "provisioning", paths.GENERATED / "grafana")
    after = _snapshot(paths.GENERATED)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    return {name for name, prefix in (("prometheus", "prometheus.yml"), ("prometheus", "rules"),
                                      ("alertmanager", "alertmanager.yml"), ("alertmanager", "secrets"))
            if any(p.relative_to(paths.GENERATED).parts[0] == prefix for p in changed)}

def running_workers():
    return sorted(int(n.split("-")[1]) for n in process.owned() if n.startswith("celery_worker-"))


def wanted(workers, kind="rabbitmq"):
    return services.core(kind) + [services.worker(i) for i in range(1, workers + 1)]


def start_service(svc, env):
    if process.running_pid(svc.name):
        return f"{svc.name}: already running"
    if svc.healthy():
        raise RuntimeError(f"{svc.name}: something else already answers on {svc.health}; stop it first")
    reason = svc.available()
    if reason:
        return f"{svc.name}: skipped, {reason}"
    child_env = env
    if svc.name.startswith("celery_worker-"):
        child_env = services.worker_env(int(svc.name.split("-")[1]), env)
    process.start(svc.name, svc.argv(env), child_env)
    return f"{svc.name}: started"


def wait_healthy(svc, env, timeout=READY_TIMEOUT):
    auth = flower_auth(env) if svc.name == "flower" else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc.healthy(auth):
            return True
        if process.running_pid(svc.name) is None:
            return False  # it exited
        time.sleep(0.25)
    return False


RELOAD = {"prometheus": "http://127.0.0.1:9090/-/reload", "alertmanager": "http://127.0.0.1:9093/-/reload"}


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
    dotenv.ensure(say)
    env = envmod.build()
    redis = urlsplit(env["REDIS_URL"])
    if env["BROKER"] == "redis":
        broker.ensure_redis_broker(env["BROKER_URL"], say)
    else:
        if urlsplit(env["BROKER_URL"]).hostname not in ("127.0.0.1", "localhost"):
            broker.ensure_reachable(env["BROKER_URL"], say)
        broker.ensure_rabbitmq(envmod.broker_parts(env["BROKER_URL"]), say)
    broker.ensure_redis(redis.hostname or "127.0.0.1", redis.port or 6379, say)
    changed = generate_configs(env, workers, env.get("ALERT_PROFILE", "standard"))
    # Scale down: stop workers beyond the wanted number.
    for index in running_workers():
        if index > workers:
            process.stop(f"celery_worker-{index}")
            say(f"celery_worker-{index}: stopped (scaling to {workers})")
    svcs = wanted(workers, env["BROKER"])
    # Workers come up before Flower, whose first inspect then finds them (`curl /api/workers`).
    first = [s for s in svcs if s.name in ("prometheus", "alertmanager") or s.name.startswith("celery_worker-")]
    results, fresh = {}, set()
    for phase in (first, [s for s in svcs if s not in first]):
        started = []
        for svc in phase:
            message = start_service(svc, env)
            say(message)
            if message.endswith("started") or message.endswith("already running"):
                started.append(svc)
            if message.endswith(": started"):
                fresh.add(svc.name)
        with concurrent.futures.ThreadPoolExecutor(len(started) or 1) as pool:
            results.update(zip([s.name for s in started], pool.map(lambda s: wait_healthy(s, env), started)))
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
    for name in [n for n in names if n.startswith("celery_worker-")]:
        process.stop(name)
        stopped.append(name)
    rest = [n for n in names if not n.startswith("celery_worker-")]
    with concurrent.futures.ThreadPoolExecutor(len(rest) or 1) as pool:
        for name, ok in zip(rest, pool.map(process.stop, rest)):
            if ok:
                stopped.append(name)
    if broker.stop_own_rabbitmq(say):
        stopped.append("rabbitmq")
    say("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def print_table(svcs, env):
    auth = flower_auth(env)
    rows = [("service", "state", "url")]
    for svc in svcs:
        reason = svc.available()
        if reason:
            rows.append((svc.name, "not run", reason))
            continue
        pid = process.running_pid(svc.name)
        health = svc.healthy(auth if svc.name == "flower" else None)
        state = "healthy" if health else ("starting/unhealthy" if pid else "stopped")
        rows.append((svc.name, state, svc.url))
    if env.get("BROKER") == "redis":
        where = urlsplit(env["BROKER_URL"])
        rows.append(("redis broker", "healthy" if broker.listening(where.hostname or "127.0.0.1", where.port or 6379)
                     else "down", broker.redact(env["BROKER_URL"])))
    else:
        rows.append(("rabbitmq", "healthy" if broker.listening("127.0.0.1", 5672) else "down",
                     "http://localhost:15672 (management UI)"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


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
