"""The environment every native process gets: the shell's, then .env, then derived values."""

import os
from urllib.parse import quote, unquote, urlsplit

from dotenv import dotenv_values

from native import paths
from native.ports import PORTS
from worker import settings as worker_settings

DEFAULTS = {
    "REDIS_URL": f"redis://127.0.0.1:{PORTS['redis']}/0",
    "FLOWER_PUBLIC_URL": f"http://localhost:{PORTS['flower']}",
    "FLOWER_USER": "admin",
}
# BROKER picks the broker kind; BROKER_URL (one setting for the app, workers, Flower and the exporter)
# names it. Without BROKER_URL: RMQ_URL for RabbitMQ (the guide's name), our own Redis for redis.
BROKERS = ("rabbitmq", "redis")
REDIS_BROKER_URL = f"redis://127.0.0.1:{PORTS['redis_broker']}/0"
PROFILES = ("dev", "production")


def read_dotenv(path):
    """The assignments of a dotenv file as python-dotenv reads them (`export KEY=value`, quotes,
    comments), values as written: no ${VAR} expansion. A key without `=` assigns nothing. Without
    Python, scripts/compose_stack.sh reads the same files alike (tests/config/dotenv_cases/)."""
    if not path.exists():
        return {}
    return {key: value for key, value in dotenv_values(path, interpolate=False).items() if value is not None}


def broker_parts(rmq_url):
    parts = urlsplit(rmq_url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or PORTS["rabbitmq"],
        "user": unquote(parts.username or "guest"),
        "password": unquote(parts.password or "guest"),
        # amqp://host// is vhost "/"; amqp://host/name is "name" (kombu's reading of the path).
        "vhost": unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
    }


def flower_auth(env):
    """Flower's basic-auth credentials (user, password) in `env`, or None when Flower has none."""
    basic = (env.get("FLOWER_BASIC_AUTH") or "").split(",")[0]
    return tuple(basic.split(":", 1)) if ":" in basic else None


def broker_kind(url):
    scheme = urlsplit(url).scheme
    if scheme in ("amqp", "amqps", "pyamqp"):
        return "rabbitmq"
    if scheme in ("redis", "rediss"):
        return "redis"
    raise ValueError(f"BROKER_URL must be an amqp:// or redis:// URL, got {url!r}")


def _redis_location(url):
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return (
        "127.0.0.1" if host == "localhost" else host,
        parts.port or PORTS["redis"],
        (parts.path or "/0").strip("/") or "0",
    )


def select_broker(env):
    """Set BROKER and BROKER_URL consistently, or refuse a combination that cannot work."""
    kind = env.get("BROKER") or (broker_kind(env["BROKER_URL"]) if env.get("BROKER_URL") else "rabbitmq")
    if kind not in BROKERS:
        raise ValueError(f"BROKER must be one of {', '.join(BROKERS)}, got {kind!r}")
    url = env.get("BROKER_URL") or (env["RMQ_URL"] if kind == "rabbitmq" else REDIS_BROKER_URL)
    if broker_kind(url) != kind:
        raise ValueError(f"BROKER={kind} but BROKER_URL is {url!r}")
    if kind == "redis" and _redis_location(url) == _redis_location(env["REDIS_URL"]):
        raise ValueError(
            f"BROKER_URL {url!r} is the result backend's database (REDIS_URL): "
            f"give the broker another database, e.g. redis://127.0.0.1:{PORTS['redis']}/1"
        )
    env["BROKER"], env["BROKER_URL"] = kind, url
    return kind


def build():
    env = dict(DEFAULTS)
    env.update(read_dotenv(paths.REPO / ".env"))
    env.update({k: v for k, v in os.environ.items()})
    profile = env.setdefault("PROFILE", "dev")
    if profile not in PROFILES:
        raise ValueError(f"PROFILE must be one of {', '.join(PROFILES)}, got {profile!r}")
    if "RMQ_URL" not in env:
        # The same non-guest user compose uses, on the local broker (native/broker.py creates it).
        user, password = env.get("RMQ_USER"), env.get("RMQ_PASSWORD")
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}" if user and password else "guest:guest"
        env["RMQ_URL"] = f"amqp://{credentials}@127.0.0.1:{PORTS['rabbitmq']}//"
    select_broker(env)
    broker = broker_parts(env["RMQ_URL"])
    env.setdefault(
        "FLOWER_BROKER_API",
        f"http://{quote(broker['user'], safe='')}:{quote(broker['password'], safe='')}@{broker['host']}:"
        f"{PORTS['rabbitmq_management']}/api/",
    )
    env.setdefault("FLOWER_DB", str(paths.DATA / "flower.db"))
    # The app's and Flower's own defaults are the first stack's ports; a second stack moves them.
    env.setdefault("APP_BIND", f"127.0.0.1:{PORTS['app']}")
    env.setdefault("FLOWER_PORT", str(PORTS["flower"]))
    if profile == "production":
        if not env.get("FLOWER_PASSWORD"):
            raise ValueError("PROFILE=production needs FLOWER_PASSWORD in .env")
        env["FLOWER_BASIC_AUTH"] = f"{env['FLOWER_USER']}:{env['FLOWER_PASSWORD']}"
        env["FLOWER_UNAUTHENTICATED_API"] = "false"
    elif not env.get("FLOWER_BASIC_AUTH") and not env.get("FLOWER_AUTH"):
        # Dev mode as in the guide: no password, and the REST API usable without one.
        env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    # Every event consumer declares its event queue as the workers' settings say (the exporter too).
    env.setdefault("EVENT_QUEUE_TTL", str(worker_settings.EVENT_QUEUE_TTL))
    env.setdefault("EVENT_QUEUE_EXPIRES", str(worker_settings.EVENT_QUEUE_EXPIRES))
    env["PYTHONPATH"] = str(paths.REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return env
