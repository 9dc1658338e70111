"""RabbitMQ and Redis for native mode: reuse the ones already listening, or start our own.

A reused RabbitMQ gets the management and prometheus plugins enabled (bound to 127.0.0.1) if it
lacks them; our own gets a config under .native/ and is stopped by `make down`.
"""
import os
import shutil
import socket
import subprocess

import requests

from native import paths, poll, process

RABBITMQ_PLUGINS = ("rabbitmq_management", "rabbitmq_prometheus")
MANAGEMENT_PORT = 15672
PROMETHEUS_PORT = 15692


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
    return subprocess.run(["rabbitmqctl", *args], env=env, check=check, timeout=timeout,
                          capture_output=True, text=True)


def _start_own_rabbitmq(broker):
    base = paths.DATA / "rabbitmq"
    for d in ("mnesia", "log"):
        (base / d).mkdir(parents=True, exist_ok=True)
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{broker['port']}\n"
        f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {MANAGEMENT_PORT}\n"
        f"prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {PROMETHEUS_PORT}\n"
        "loopback_users.guest = true\n")
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
        rabbitmqctl(["eval", f'application:set_env({app}, tcp_config, [{{ip, "127.0.0.1"}}, {{port, {port}}}]).'],
                     check=False)
    subprocess.run(["rabbitmq-plugins", "enable", *RABBITMQ_PLUGINS], check=True, timeout=120,
                   capture_output=True, text=True)


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
        r = requests.get(f"http://127.0.0.1:{MANAGEMENT_PORT}/api/whoami",
                         auth=(broker["user"], broker["password"]), timeout=5)
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
    if rabbitmqctl(["add_user", user, password], check=False).returncode != 0:
        rabbitmqctl(["change_password", user, password])
    rabbitmqctl(["set_permissions", "-p", "/", user, ".*", ".*", ".*"])
    rabbitmqctl(["set_user_tags", user, "monitoring"])
    try:
        poll.until(lambda: _can_log_in(broker), 20)
    except poll.TimedOut:
        raise RuntimeError(f"cannot log in to RabbitMQ as {user!r} after creating it") from None


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
