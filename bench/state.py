"""Where the bench keeps its state and how its copy of the bundle is told apart from the real one.

Isolation from a running native stack: RabbitMQ vhost `bench` (same broker, same user), its own ports
(PORT_MAP applied to native mode's ports), state and logs under .native/bench/, worker node name
bench-w1@host. Under NATIVE_INSTANCE=<name> (with NATIVE_PORT_OFFSET) a second bench runs beside the
first: vhost bench-<name>, state under that instance's directory, every bench port moved by the offset.
"""

import socket

from native import broker as native_broker, derive, paths
from native.ports import OFFSET, PORTS as NATIVE

STATE = paths.STATE / "bench"
RUN, LOGS = STATE / "run", STATE / "logs"
VHOST = f"bench-{paths.INSTANCE}" if paths.INSTANCE else "bench"
NODE = "bench-w1"
HOST = socket.gethostname()
NODENAME = f"{NODE}@{HOST}"
MGMT = f"http://127.0.0.1:{native_broker.MANAGEMENT_PORT}/api"

# The bench's port of each service it runs. The app is not run (tasks are published directly); the
# RabbitMQ ports are the shared broker's.
BASE_PORTS = {"prometheus": 19090, "alertmanager": 19093, "flower": 15556, "exporter": 19808, "worker_metrics": 19191}
PORTS = {name: port + OFFSET for name, port in BASE_PORTS.items()}
# Native mode's port of each of them -> the bench's.
PORT_MAP = {
    NATIVE["prometheus"]: PORTS["prometheus"],
    NATIVE["alertmanager"]: PORTS["alertmanager"],
    NATIVE["flower"]: PORTS["flower"],
    NATIVE["celery_exporter"]: PORTS["exporter"],
    derive.worker_port(1): PORTS["worker_metrics"],
}


def node_argument(index):
    """Bench worker <index>'s `-n`: bench-w1@%h, then bench-w<i>@%h-<i> (as in native mode, the host
    part differs, because the exporter keeps only the part after `@`)."""
    return f"{NODE}@%h" if index == 1 else f"bench-w{index}@%h-{index}"


def nodename(index):
    return node_argument(index).replace("%h", HOST)


def worker_process(index):
    """The name of bench worker <index>'s pid file and log."""
    return "worker" if index == 1 else f"worker-{index}"


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
