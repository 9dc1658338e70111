"""RabbitMQ and Redis for native mode: reuse the ones already listening, or start our own.

A reused RabbitMQ gets the management and prometheus plugins enabled (bound to 127.0.0.1) if it
lacks them; our own gets a config under .native/ and is stopped by `make down`.
"""

import os
import shutil
import socket
import subprocess
from urllib.parse import urlsplit

import requests

from native import paths, poll, process
from native.ports import PORTS

RABBITMQ_PLUGINS = ("rabbitmq_management", "rabbitmq_prometheus")
MANAGEMENT_PORT = PORTS["rabbitmq_management"]
PROMETHEUS_PORT = PORTS["rabbitmq_prometheus"]


def listening(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_listening(host, port, timeout):
    try:
        return poll.until(lambda: listening(host, port), timeout, 0.2)
    except poll.TimedOut:
        return False


# --- RabbitMQ -------------------------------------------------------------------------------


def _own_rabbitmq_env():
    base = paths.DATA / "rabbitmq"
    return {
        **os.environ,
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        "RABBITMQ_NODENAME": "rabbit@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


def rabbitmqctl(args, env=None, check=True, timeout=60):
    if env is None and (paths.RUN / "rabbitmq.owned").exists():
        env = _own_rabbitmq_env()  # our own node keeps its state under .native/
    return subprocess.run(["rabbitmqctl", *args], env=env, check=check, timeout=timeout, capture_output=True, text=True)


def _start_own_rabbitmq(broker):
    base = paths.DATA / "rabbitmq"
    for d in ("mnesia", "log"):
        (base / d).mkdir(parents=True, exist_ok=True)
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{broker['port']}\n"
        f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {MANAGEMENT_PORT}\n"
        f"prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {PROMETHEUS_PORT}\n"
        "loopback_users.guest = true\n"
    )
    (base / "enabled_plugins").write_text("[%s].\n" % ",".join(RABBITMQ_PLUGINS))
    if _has_user("rabbitmq"):  # the server drops to this user when started as root
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(base)], check=False)
    env = _own_rabbitmq_env()
    subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True, timeout=60)
    if not wait_listening("127.0.0.1", broker["port"], 60):
        raise RuntimeError(f"RabbitMQ did not start listening on {broker['port']}; see {base / 'log'}")
    # Mark it ours so that `make down` stops it (and only it).
    (paths.RUN / "rabbitmq.owned").write_text("own")


def _has_user(name):
    try:
        import pwd

        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _enable_plugins_on_running_node():
    """Bind the plugin listeners to loopback first (they default to all interfaces), then enable."""
    for app, port in (("rabbitmq_management", MANAGEMENT_PORT), ("rabbitmq_prometheus", PROMETHEUS_PORT)):
        rabbitmqctl(
            ["eval", f'application:set_env({app}, tcp_config, [{{ip, "127.0.0.1"}}, {{port, {port}}}]).'], check=False
        )
    subprocess.run(
        ["rabbitmq-plugins", "enable", *RABBITMQ_PLUGINS], check=True, timeout=120, capture_output=True, text=True
    )


def ensure_rabbitmq(broker, say):
    if broker["host"] not in ("127.0.0.1", "localhost"):
        say(f"rabbitmq: using the remote broker at {broker['host']}:{broker['port']}")
        return
    if listening(broker["host"], broker["port"]):
        say(f"rabbitmq: reusing the broker already listening on {broker['port']}")
        if not (listening("127.0.0.1", MANAGEMENT_PORT) and listening("127.0.0.1", PROMETHEUS_PORT)):
            say("rabbitmq: enabling the management and prometheus plugins (127.0.0.1 only)")
            _enable_plugins_on_running_node()
    else:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("no broker at RMQ_URL and rabbitmq-server is not installed (make deps)")
        say("rabbitmq: starting our own broker (state in .native/data/rabbitmq)")
        _start_own_rabbitmq(broker)
    for port in (MANAGEMENT_PORT, PROMETHEUS_PORT):
        if not wait_listening("127.0.0.1", port, 60):
            raise RuntimeError(f"RabbitMQ plugin port {port} did not open")
    ensure_user(broker, say)


def _can_log_in(broker):
    try:
        r = requests.get(
            f"http://127.0.0.1:{MANAGEMENT_PORT}/api/whoami", auth=(broker["user"], broker["password"]), timeout=5
        )
        return r.status_code == 200
    except requests.RequestException:
        return False


def ensure_user(broker, say):
    """The bundle's own RabbitMQ user (not guest): full rights on vhost /, `monitoring` tag so that
    Flower's Broker page can read the management API."""
    if broker["user"] == "guest" or _can_log_in(broker):
        return
    say(f"rabbitmq: creating user {broker['user']!r} (password from .env)")
    user, password = broker["user"], broker["password"]
    # `--`: a name or password that begins with "-" is a value, not an option.
    if rabbitmqctl(["add_user", "--", user, password], check=False).returncode != 0:
        rabbitmqctl(["change_password", "--", user, password])
    rabbitmqctl(["set_permissions", "-p", "/", user, ".*", ".*", ".*"])
    rabbitmqctl(["set_user_tags", user, "monitoring"])
    try:
        poll.until(lambda: _can_log_in(broker), 20)
    except poll.TimedOut:
        raise RuntimeError(f"cannot log in to RabbitMQ as {user!r} after creating it") from None


def ensure_vhost(broker, say):
    """The broker URL's vhost, when it is not "/": created if missing, with full rights for its user
    (a second native stack on the same broker keeps its queues, events and control commands apart)."""
    vhost, user = broker["vhost"], broker["user"]
    if vhost == "/" or broker["host"] not in ("127.0.0.1", "localhost"):
        return
    if rabbitmqctl(["add_vhost", vhost], check=False).returncode == 0:
        say(f"rabbitmq: created vhost {vhost!r}")
    rabbitmqctl(["set_permissions", "-p", vhost, user, ".*", ".*", ".*"])


def stop_own_rabbitmq(say):
    marker = paths.RUN / "rabbitmq.owned"
    if not marker.exists():
        return False
    say("rabbitmq: stopping our own broker")
    rabbitmqctl(["stop"], env=_own_rabbitmq_env(), check=False)
    marker.unlink(missing_ok=True)
    return True


# --- Redis ----------------------------------------------------------------------------------


def redis_server_argv(port, data_dir=None):
    """redis-server on 127.0.0.1 with nothing kept on disk (no snapshots, no append-only file)."""
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    return argv + (["--dir", str(data_dir)] if data_dir else [])


def ensure_redis(host, port, say):
    if host not in ("127.0.0.1", "localhost"):
        say(f"redis: using the remote server at {host}:{port}")
        return
    if listening(host, port):
        say(f"redis: reusing the server already listening on {port}")
        return
    if shutil.which("redis-server") is None:
        raise RuntimeError("no Redis at REDIS_URL and redis-server is not installed (make deps)")
    say("redis: starting our own server (nothing kept on disk)")
    (paths.DATA / "redis").mkdir(parents=True, exist_ok=True)
    process.start("redis", redis_server_argv(port, paths.DATA / "redis"), env=dict(os.environ))
    if not wait_listening(host, port, 20):
        raise RuntimeError(f"Redis did not start on {port}; see {process.logfile('redis')}")


# --- Redis as broker ------------------------------------------------------------------------
# Its own server (not the results' Redis, which keeps nothing on disk): a task accepted with 202 is
# in the append-only file, so it survives a restart of the broker (fsync every second; a crash of
# the machine, not of Redis, can lose that last second). noeviction: a full broker refuses new tasks
# instead of silently dropping queued ones.
REDIS_EXPORTER_PORT = PORTS["redis_exporter"]
# Pub/sub clients (Flower, the exporter: task events) are disconnected when this much output waits
# for them: hard limit, soft limit, seconds over the soft limit (Redis's default: 32mb 8mb 60).
PUBSUB_BUFFER_LIMIT = "64mb 16mb 60"


def redis_broker_argv(port, directory):
    return [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(directory),
        "--appendonly",
        "yes",
        "--appendfsync",
        # Fsynced before Redis replies: with everysec, a write is postponed while the last second's
        # fsync runs, and a task accepted meanwhile is lost if Redis dies then.
        "always",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
        "--client-output-buffer-limit",
        f"pubsub {PUBSUB_BUFFER_LIMIT}",
    ]


def redact(url):
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


# The first bytes each broker answers to a greeting: a TCP connect alone proves nothing (a proxy or
# firewall may accept it and then say nothing, which is how a client hangs).
_GREETING = {"redis": (b"PING\r\n", (b"+PONG", b"-NOAUTH", b"-ERR")), "amqp": (b"AMQP\x00\x00\x09\x01", (b"\x01",))}


def answers(host, port, kind, timeout=3.0):
    """True if a `kind` ("redis" or "amqp") server answers at host:port within timeout seconds."""
    hello, replies = _GREETING[kind]
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(hello)
            return sock.recv(16).startswith(replies)
    except OSError:
        return False


def ensure_reachable(url, say, timeout=3.0):
    """A remote broker that does not answer stops `make up` at once, with its address."""
    parts = urlsplit(url)
    kind = "redis" if parts.scheme.startswith("redis") else "amqp"
    host, port = parts.hostname or "127.0.0.1", parts.port or PORTS["redis" if kind == "redis" else "rabbitmq"]
    if not answers(host, port, kind, timeout=timeout):
        raise RuntimeError(
            f"cannot reach the broker at {redact(url)} ({host}:{port} no {kind} answer within "
            f"{timeout:g}s); check BROKER_URL, or unset it to use the local broker"
        )
    say(f"broker: using the remote broker at {host}:{port}")


def ensure_redis_broker(url, say):
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or PORTS["redis"]
    if host not in ("127.0.0.1", "localhost"):
        ensure_reachable(url, say)
        return
    if listening(host, port):
        say(f"redis broker: reusing the server already listening on {port} (its persistence is its own)")
        return
    if shutil.which("redis-server") is None:
        raise RuntimeError("no Redis at BROKER_URL and redis-server is not installed (make deps)")
    directory = paths.DATA / "redis-broker"
    directory.mkdir(parents=True, exist_ok=True)
    say(f"redis broker: starting our own server on {port} (append-only file in {directory})")
    process.start("redis-broker", redis_broker_argv(port, directory), env=dict(os.environ))
    if not wait_listening(host, port, 20):
        raise RuntimeError(f"the Redis broker did not start on {port}; see {process.logfile('redis-broker')}")


def redis_exporter_argv(broker_url):
    """prometheus-redis-exporter for the broker: server metrics plus the length of Celery's queue list
    and of the `unacked` hash (messages taken by a worker, not yet acknowledged)."""
    parts = urlsplit(broker_url)
    db = (parts.path or "/0").strip("/") or "0"
    address = f"redis://{parts.hostname or '127.0.0.1'}:{parts.port or PORTS['redis']}"
    return [
        "prometheus-redis-exporter",
        f"--redis.addr={address}",
        f"--web.listen-address=127.0.0.1:{REDIS_EXPORTER_PORT}",
        f"--check-single-keys=db{db}=celery,db{db}=unacked",
        "--include-system-metrics=false",
    ]
