"""The bench's RabbitMQ vhost: created on first use, read through the management API, cleaned over AMQP."""

import urllib.parse

import psutil
import requests

from bench.probes import wait_until
from bench.state import MGMT, VHOST, BenchError
from native import broker as native_broker


def ensure(auth, say):
    """Create the vhost unless it exists, and give the user its permissions on it."""
    try:
        r = requests.get(f"{MGMT}/vhosts", auth=auth, timeout=10)
    except requests.RequestException:
        raise BenchError(f"RabbitMQ's management API at {MGMT} is unreachable; is the broker up (make up)?") from None
    if r.status_code != 200:
        raise BenchError(
            f"RabbitMQ management API at {MGMT} answered {r.status_code} for {auth[0]!r}; is the broker up (make up)?"
        )
    steps = [["set_permissions", "-p", VHOST, auth[0], ".*", ".*", ".*"]]
    if VHOST not in [v["name"] for v in r.json()]:
        say(f"rabbitmq: creating vhost {VHOST!r} for {auth[0]!r} (isolated from vhost /)")
        steps.insert(0, ["add_vhost", VHOST])
    # Permissions every time: the vhost may exist from a run as another user (e.g. guest).
    for args in steps:
        # native/broker.py knows whether the node is ours (its env) or the system's.
        out = native_broker.rabbitmqctl(args, check=False)
        if out.returncode != 0 and "already" not in (out.stderr + out.stdout):
            raise BenchError(f"rabbitmqctl {' '.join(args)} failed: {out.stderr.strip() or out.stdout.strip()}")


def queues(auth):
    r = requests.get(f"{MGMT}/queues/{VHOST}", auth=auth, timeout=10, params={"columns": "name,messages,consumers"})
    r.raise_for_status()
    return r.json()


def event_queue_owners(auth, pids, timeout=20):
    """{owner: queue} for the given {owner: pid}: each event queue matched by its consumer's TCP port."""
    ports = {owner: {c.laddr.port for c in psutil.Process(pid).net_connections("tcp")} for owner, pid in pids.items()}
    owners = {}

    def find():
        for q in queues(auth):
            if not q["name"].startswith("celeryev."):
                continue
            detail = requests.get(
                f"{MGMT}/queues/{VHOST}/{urllib.parse.quote(q['name'], safe='')}", auth=auth, timeout=10
            ).json()
            for consumer in detail.get("consumer_details", []):
                peer = consumer.get("channel_details", {}).get("peer_port")
                for owner, local in ports.items():
                    if peer in local:
                        owners[owner] = q["name"]
        return len(owners) == len(pids)

    wait_until(find, timeout, "the monitors' event queues in the management API", interval=1)
    return owners


# The task queues bench runs publish to: Celery's default and the per-queue recipe's (bench/prefetch.py).
TASK_QUEUES = ("celery", "short", "long")


def clean(app, auth):
    """Delete leftover event queues and purge the task queues (AMQP, exact and immediate): event
    queues outlive their consumer for event_queue_expires and would keep receiving events."""
    listed = [q["name"] for q in queues(auth)]
    names = [name for name in listed if name.startswith("celeryev.")]
    with app.connection_for_write() as conn:
        for name in names:
            conn.default_channel.queue_delete(name)
        for name in TASK_QUEUES:
            if name != "celery" and name not in listed:
                continue  # purging a queue that does not exist would close the channel
            try:
                conn.default_channel.queue_purge(name)
            except Exception:
                pass  # no task queue yet


class Depths:
    """Exact queue depths through a passive declare on one AMQP connection (the management API's
    figures are refreshed only every few seconds)."""

    def __init__(self, app):
        self.conn = app.connection_for_write()
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
