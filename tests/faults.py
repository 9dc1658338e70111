"""Inject real faults into the native stack: stop and start the broker, Redis, or one service."""

import os
import signal
import subprocess
import time
from urllib.parse import urlsplit

from native import broker, env as native_env, process
from native.ports import PORTS
from tests.live import STACK_WORKERS, native_cli, wait_for


def stop_broker():
    """Stop RabbitMQ's application (the node stays up, queues and messages on disk survive)."""
    broker.rabbitmqctl(["stop_app"])
    wait_for(lambda: not broker.listening("127.0.0.1", PORTS["rabbitmq"]), 30, message="the broker port to close")


def start_broker():
    broker.rabbitmqctl(["start_app"])
    wait_for(lambda: broker.listening("127.0.0.1", PORTS["rabbitmq"]), 60, message="the broker port to open")


def redis_port():
    return urlsplit(native_env.build()["REDIS_URL"]).port or PORTS["redis"]


def stop_redis():
    port = redis_port()
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=30)
    wait_for(lambda: not broker.listening("127.0.0.1", port), 30, message="Redis to stop")


def start_redis():
    # Daemonized, as the machine's own Redis runs: `make down` leaves it running.
    port = redis_port()
    subprocess.run(broker.redis_server_argv(port) + ["--daemonize", "yes"], check=True, timeout=30, capture_output=True)
    wait_for(lambda: broker.listening("127.0.0.1", port), 30, message="Redis to start")


def kill_service(name, sig=signal.SIGKILL):
    """Kill a native service's whole process group (e.g. a worker with its pool children)."""
    pid = process.running_pid(name)
    assert pid, f"{name} is not running"
    os.killpg(pid, sig)
    wait_for(lambda: not process.alive(pid), 30, message=f"{name} to die")


def restore_stack(workers=STACK_WORKERS):
    """`make up` again: starts whatever is missing, leaves the rest."""
    result = native_cli("up", "--workers", str(workers))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def restart_service(name):
    process.stop(name)
    t0 = time.monotonic()
    restore_stack()
    return time.monotonic() - t0
