"""Where the bench keeps its state and how its copy of the bundle is told apart from the real one.

Isolation from a running native stack: RabbitMQ vhost `bench` (same broker, same user), its own ports
(PORT_MAP applied to native mode's ports), state and logs under .native/bench/, worker node name
bench-w1@host.
"""
import socket

from native import broker as native_broker, derive, paths

STATE = paths.REPO / ".native" / "bench"
RUN, LOGS = STATE / "run", STATE / "logs"
VHOST = "bench"
NODE = "bench-w1"
HOST = socket.gethostname()
NODENAME = f"{NODE}@{HOST}"
MGMT = f"http://127.0.0.1:{native_broker.MANAGEMENT_PORT}/api"

# Native mode's port of each service -> the bench's. The app is not run (tasks are published
# directly); the RabbitMQ ports (5672, 15672, 15692) are the shared broker's.
PORT_MAP = {9090: 19090, 9093: 19093, 5555: 15556, 9808: 19808, derive.worker_port(1): 19191}
PORTS = {"prometheus": PORT_MAP[9090], "alertmanager": PORT_MAP[9093], "flower": PORT_MAP[5555],
         "exporter": PORT_MAP[9808], "worker_metrics": PORT_MAP[derive.worker_port(1)]}


class BenchError(Exception):
    """A problem the user can act on: printed as one line, exit 1."""


def bench_target(target):
    """`host:port` with native's port replaced by the bench's."""
    host, _, port = target.rpartition(":")
    return f"{host}:{PORT_MAP.get(int(port), port) if port.isdigit() else port}"


def bench_argv(argv):
    """A native service's command line for the bench: the bench app and the bench's ports."""
    out = []
    for arg in map(str, argv):
        if arg == "worker.celery_app":
            arg = "bench.tasks"
        for native_port, port in PORT_MAP.items():
            for sep in ("=", ":"):
                if arg.endswith(f"{sep}{native_port}"):
                    arg = arg[: -len(str(native_port))] + str(port)
        out.append(arg)
    return out
