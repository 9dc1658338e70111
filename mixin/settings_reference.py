"""docs/configuration.md: every setting of the bundle, its default and who reads it, generated from the
files that read each one (`python -m mixin` writes it; tests/docs/test_configuration.py checks it).

Where the facts come from:
- the processes' settings: the calls that read the environment in the PROCESS_FILES (found in their
  syntax trees), with the default each call gives, and whether the raw value goes through int() or
  float() (then an empty value stops the process);
- native mode: native/env.py (what it sets when the variable is unset), native/ports.py,
  native/paths.py, native/__main__.py, native/derive.py (the Alertmanager secrets);
- make: the Makefile's `?=` settings and the variables its recipes use, scripts/*.sh's
  `X=${X:-default}` ones;
- compose: compose.yaml and its overrides, key by key: passed from .env, set to a value, or absent;
- the Helm chart: the `env:` entries of charts/celery-observability/templates/;
- .env.example: its keys (commented ones too) and their example values.
Only the one-line descriptions are written here (DESCRIPTIONS). A variable found without one is listed
apart as not described, and a description of a variable that nothing reads is left out; the test
names both.
"""

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from native.ports import BASE_PORTS

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "configuration.md"
COMPOSE_FILES = ("compose.yaml", "compose.production.yaml", "compose.redis.yaml")
CHART_TEMPLATES = REPO / "charts" / "celery-observability" / "templates"

# Files read by the bundle's processes (name of the process in the table, file).
PROCESS_FILES = {
    "worker/settings.py": "app, workers, Flower",
    "worker/metrics.py": "workers",
    "worker/latency.py": "workers",
    "app/settings.py": "app",
    "app/gunicorn_conf.py": "app",
    "worker/flowerconfig.py": "Flower",
    "exporter/run_exporter.py": "exporter",
}
NATIVE_FILES = ("native/env.py", "native/ports.py", "native/paths.py", "native/__main__.py")
SCRIPTS = ("scripts/compose_stack.sh", "scripts/find_python.sh")

SECTIONS = {
    "make": (
        "`make` and the stack scripts",
        "Settings of one command, given on its command line or in the environment (`WORKERS=3 make up`); "
        "`.env` does not set them.",
    ),
    "accounts": (
        "Accounts and secrets",
        "`make up` writes a random value for each `change-me` of .env.example.",
    ),
    "celery": ("Broker, results and events (every Celery process)", ""),
    "limits": (
        "Request limits, memory containment, fault injection",
        "The app refuses a request over a limit with 422 naming the field; docs/limits.md explains them.",
    ),
    "worker": ("Workers", ""),
    "app": ("The task submitter (app)", ""),
    "flower": (
        "Flower",
        "Flower reads any of its options as `FLOWER_<OPTION>`; these are the ones the bundle sets or gives a "
        "default in worker/flowerconfig.py.",
    ),
    "exporter": (
        "celery-exporter",
        "The exporter reads any of its options as `CE_<OPTION>` (e.g. `CE_BROKER_URL`, which compose and the "
        "chart set); these are the options its launcher adds and the variables the launcher reads.",
    ),
    "compose": ("Docker path only", ""),
    "undescribed": (
        "Not described yet",
        "Read by the code, but without a description in mixin/settings_reference.py (DESCRIPTIONS).",
    ),
    "native": (
        "Native mode",
        "A second native stack on the same machine takes NATIVE_INSTANCE and NATIVE_PORT_OFFSET from the "
        "environment; native mode's ports are in native/ports.py.",
    ),
}

# section, what it does. Defaults, readers and where each path passes it are found, not written here.
DESCRIPTIONS = {
    # make
    "MODE": (
        "make",
        "`auto`: Docker when its daemon answers, native when there is no docker CLI; `docker` or `native` to choose",
    ),
    "PROFILE": (
        "make",
        "`dev` or `production` (Flower's basic auth on, Grafana anonymous access off, fault injection off)",
    ),
    "WORKERS": ("make", "how many workers `make up` runs (1 to 16); a second `make up` scales to the new number"),
    "BROKER": ("make", "`rabbitmq` or `redis`: the broker `make up` starts (natively also read from `.env`)"),
    "DRY_RUN": ("make", "`1`: the Docker path prints the `.env` and the commands it would run, and runs none"),
    "ENV_FILE": ("make", "the dotenv file the Docker path reads and writes (Compose then gets `--env-file`)"),
    "PYTHON": ("make", "the Python 3.11 or 3.12 interpreter for the virtualenv, when the one on PATH is another"),
    "SCENARIO": (
        "make",
        "`make loadtest`: the load shape (`steady`, `burst`, `failures`, `backlog`, `cpu`, `memory`, `slow`, `mixed`)",
    ),
    "ARGS": ("make", "`make loadtest`, `make bench`: more options (`.venv/bin/python -m loadtest -h`)"),
    # accounts
    "RMQ_USER": (
        "accounts",
        "RabbitMQ user of every Celery process (not `guest`); native mode creates it in its broker",
    ),
    "RMQ_PASSWORD": ("accounts", "its password (compose: applies to an empty `rabbitmq-data` volume only)"),
    "GRAFANA_ADMIN_USER": ("accounts", "Grafana's admin"),
    "GRAFANA_ADMIN_PASSWORD": ("accounts", "its password (applies to an empty `grafana-data` volume only)"),
    "FLASK_SECRET_KEY": ("accounts", "signs the form's CSRF token"),
    "FLOWER_USER": ("accounts", "Flower's login with `PROFILE=production`"),
    "FLOWER_PASSWORD": ("accounts", "its password (required with `PROFILE=production`)"),
    "FLOWER_BASIC_AUTH": (
        "accounts",
        "`user:password[,user2:password2]`: Flower's basic auth in the dev profile; empty: none",
    ),
    "ALERT_WEBHOOK_TOKEN": (
        "accounts",
        "bearer token Alertmanager sends to the app's webhook; the app refuses posts without it (401)",
    ),
    "SLACK_API_URL": (
        "accounts",
        "Slack incoming-webhook URL: critical and warning alerts go to Slack; empty: no Slack",
    ),
    "SMTP_PASSWORD": ("accounts", "SMTP relay password: critical alerts go by email; empty: no email"),
    # celery
    "BROKER_URL": (
        "celery",
        "the broker of every process (amqp:// or redis://); natively `BROKER=redis` makes it the Redis broker of native mode",
    ),
    "RMQ_URL": ("celery", "RabbitMQ's URL (the guide's name), the broker when `BROKER_URL` is unset"),
    "REDIS_URL": ("celery", "the result backend (database 0; a Redis broker must use another database)"),
    "VISIBILITY_TIMEOUT": (
        "celery",
        "Redis broker: seconds before a task taken by a worker that died is delivered again; must exceed `MAX_TIMEOUT_SECONDS`",
    ),
    "EVENT_QUEUE_TTL": ("celery", "seconds a monitor's task events wait in its RabbitMQ queue (Celery's default is 5)"),
    "EVENT_QUEUE_EXPIRES": ("celery", "seconds before a departed monitor's event queue is deleted"),
    "EVENT_SERIALIZER": (
        "celery",
        "`json` or `msgpack` for task events; every producer, worker and the exporter must agree",
    ),
    "EVENT_FLUSH_SECONDS": (
        "celery",
        "a worker sends its task events in batches at most this many seconds after the first; 0: Celery's flush at every loop turn (about one event per message)",
    ),
    "TASK_SEND_SENT_EVENT": (
        "celery",
        "whether publishers send a `task-sent` event per task (Celery's `task_send_sent_event`)",
    ),
    # limits
    "MAX_TASKS_PER_REQUEST": ("limits", "largest `count` of one request"),
    "MAX_TIMEOUT_SECONDS": ("limits", "largest `timeout` of one task; the longest task the workers run"),
    "MAX_MEMORY_MB_PER_TASK": ("limits", "largest `memory_mb` of one task"),
    "MAX_TASK_SECONDS_PER_REQUEST": ("limits", "largest `count` × `timeout` of one request (422, field `count`)"),
    "MAX_MEMORY_MB_PER_REQUEST": ("limits", "largest `count` × `memory_mb` of one request (422, field `memory_mb`)"),
    "WORKER_MAX_MEMORY_PER_CHILD_MB": (
        "limits",
        "Celery's `worker_max_memory_per_child`: a pool process above it after a task is replaced; 0: off",
    ),
    "WORKER_MAX_TASKS_PER_CHILD": ("limits", "Celery's `worker_max_tasks_per_child`; 0: off"),
    "WORKER_MAX_RETAINED_MB": ("limits", "memory one pool process keeps for `memory_mb` tasks, in all"),
    "FAULT_INJECTION": ("limits", "whether the app accepts `fail_rate` and `memory_mb` (`on`/`off`)"),
    # worker
    "WORKER_CONCURRENCY": ("worker", "pool processes per worker (prefork)"),
    "WORKER_METRICS": ("worker", "`0`: no `/metrics` server in the worker (no CPU, memory, pool or latency metrics)"),
    "WORKER_METRICS_ADDR": ("worker", "address of the worker's `/metrics`"),
    "WORKER_METRICS_PORT": ("worker", "port of the worker's `/metrics` (natively worker *i* gets 9190 + *i*)"),
    "WORKER_CPU_LIMIT_CORES": ("worker", "what 100 % CPU means for the worker, when the detected limit is wrong"),
    "WORKER_LATENCY_METRICS": (
        "worker",
        "`0`: no queue-wait, prefetch-wait and runtime histograms; `per_queue`: without the task label "
        "(docs/cardinality.md)",
    ),
    "TASK_LATENCY_BUCKETS": (
        "worker",
        "bucket bounds of those histograms, in seconds, comma-separated (the mixin's `latency.buckets` must match)",
    ),
    # app
    "APP_BIND": ("app", "address and port gunicorn listens on"),
    "APP_THREADS": ("app", "gunicorn threads (one process)"),
    "FLOWER_PUBLIC_URL": (
        "app",
        "Flower's address in the app's pages and API answers (`flower_urls`); not the alerts' links (docs/alerts.md)",
    ),
    "MAX_BODY_BYTES": ("app", "largest request body (413 above)"),
    "ALERTS_KEPT": ("app", "notifications the app keeps in memory for `/alerts`"),
    "ALERT_WEBHOOK_MAX_BYTES": ("app", "largest webhook body (413 above)"),
    "RUNBOOKS_DIR": ("app", "folder of the runbooks the app serves at `/runbooks/<AlertName>`"),
    # flower
    "FLOWER_PORT": ("flower", "port of Flower's UI, API and `/metrics`"),
    "FLOWER_ADDRESS": ("flower", "address Flower listens on"),
    "FLOWER_BROKER_API": ("flower", "RabbitMQ's management API, for Flower's Broker page"),
    "FLOWER_MAX_TASKS": ("flower", "tasks Flower keeps in memory (docs/performance.md measures the cost)"),
    "FLOWER_PURGE_OFFLINE_WORKERS": (
        "flower",
        "seconds before a dead worker leaves Flower and its `/metrics` (`CeleryWorkerDown` needs it)",
    ),
    "FLOWER_PERSISTENT": ("flower", "keep Flower's tasks across restarts in `FLOWER_DB`"),
    "FLOWER_DB": ("flower", "Flower's state file"),
    "PER_TASK_FLOWER_METRICS": (
        "flower",
        "`1`: Flower's `/metrics` per worker and task name, as Flower has them (small fleets; the mixin's "
        "`cardinality.flower_task_series` must be true); default per worker only (docs/cardinality.md)",
    ),
    "FLOWER_STATE_SAVE_INTERVAL": ("flower", "milliseconds between two saves of that file"),
    "FLOWER_UNAUTHENTICATED_API": ("flower", "`true`: Flower's REST API answers without credentials (dev)"),
    "FLOWER_AUTH": ("flower", "Flower's OAuth (with `FLOWER_AUTH_PROVIDER`; see Flower's documentation)"),
    # exporter
    "CE_QUEUE_METRICS_INTERVAL": ("exporter", "seconds between two refreshes of the queue and worker-count metrics"),
    "CE_PER_WORKER_TASK_METRICS": (
        "exporter",
        "`true`: task counters and runtimes per worker host as well (more series)",
    ),
    # compose
    "BIND_ADDRESS": ("compose", "address the published ports bind to (127.0.0.1: this machine only)"),
    "HOST_PORT_APP": ("compose", "host port of the app"),
    "HOST_PORT_FLOWER": ("compose", "host port of Flower (the app's links to Flower follow it)"),
    "HOST_PORT_PROMETHEUS": ("compose", "host port of Prometheus"),
    "HOST_PORT_ALERTMANAGER": ("compose", "host port of Alertmanager"),
    "HOST_PORT_GRAFANA": ("compose", "host port of Grafana"),
    "HOST_PORT_RABBITMQ_UI": ("compose", "host port of RabbitMQ's management UI"),
    "HOST_PORT_RABBITMQ_METRICS": ("compose", "host port of RabbitMQ's metrics"),
    "HOST_PORT_EXPORTER": ("compose", "host port of the celery-exporter"),
    "HOST_PORT_WORKER_METRICS": ("compose", "host port range of the workers' `/metrics`: each replica gets a free one"),
    "GRAFANA_ANONYMOUS_ENABLED": ("compose", "Grafana's dashboards readable without logging in (read-only)"),
    "GRAFANA_ROOT_URL": (
        "compose",
        "Grafana's public address (its own links and redirects); not the alerts' links (docs/alerts.md)",
    ),
    # native
    "NATIVE_INSTANCE": (
        "native",
        "name of a second stack on the same machine (its state in `.native/instances/<name>/`)",
    ),
    "NATIVE_PORT_OFFSET": ("native", "added to every port of that stack but the shared RabbitMQ and results Redis"),
    "NATIVE_CLUSTER": (
        "native",
        "Prometheus's external label `cluster` (one stack standing for one cluster of several)",
    ),
    "NATIVE_REMOTE_WRITE": (
        "native",
        "remote-write URL for the stack's Prometheus: a global store over several stacks "
        "([multi-cluster.md](multi-cluster.md))",
    ),
    "ALERT_PROFILE": (
        "native",
        "`fast`: the rules rendered with the live tests' short windows instead of alerts/celery.rules.yml",
    ),
}

# Defaults no expression in the code states plainly.
DEFAULT_TEXT = {
    "VISIBILITY_TIMEOUT": "`MAX_TIMEOUT_SECONDS` + 60",
    "WORKER_MAX_MEMORY_PER_CHILD_MB": "256, less on a small machine (half the worker's memory over its pool processes, at least 64)",
    "WORKER_MAX_RETAINED_MB": "`WORKER_MAX_MEMORY_PER_CHILD_MB` (256 when that is 0)",
    "FAULT_INJECTION": "`on`; `off` with `PROFILE=production`",
    "BROKER_URL": "`RMQ_URL`",
    "FLASK_SECRET_KEY": "random at each start",
    "RUNBOOKS_DIR": "docs/runbooks/",
    "WORKER_CPU_LIMIT_CORES": "the cgroup's CPU quota, else the CPUs it may run on",
    "FLOWER_STATE_SAVE_INTERVAL": "60000 with `FLOWER_PERSISTENT`, else 0",
    "ENV_FILE": "`.env`",
    "PYTHON": "the first of python3.12, python3.11, python3 on PATH that fits",
    "BROKER": "`rabbitmq`",
    "FLOWER_UNAUTHENTICATED_API": "`false` (Flower's)",
    "TASK_LATENCY_BUCKETS": None,  # filled in by latency_buckets_text()
}
# What native mode supplies when neither .env nor the shell sets the variable, where native/env.py
# computes it (a value it sets that equals the default is not repeated).
NATIVE_DEFAULT_TEXT = {
    "RMQ_URL": "built from `RMQ_USER`, `RMQ_PASSWORD` on 127.0.0.1",
    "BROKER_URL": "`RMQ_URL`; with `BROKER=redis` native mode's own Redis broker, `redis://127.0.0.1:6380/0`",
    "FLOWER_BROKER_API": "built from `RMQ_URL`'s user",
    "FLOWER_DB": "`.native/data/flower.db`",
    "FLOWER_BASIC_AUTH": "`FLOWER_USER:FLOWER_PASSWORD` with `PROFILE=production`",
    "EVENT_QUEUE_TTL": None,
    "EVENT_QUEUE_EXPIRES": None,
}
# Process settings compose does not pass, and why (shown in the table).
COMPOSE_OMITTED = {
    "RUNBOOKS_DIR": "the image's docs/runbooks/",
    "FLOWER_STATE_SAVE_INTERVAL": "follows `FLOWER_PERSISTENT`",
    "FLOWER_AUTH": "add it to the `flower` service",
}
PLACEHOLDER = "change-me"


@dataclass
class Setting:
    name: str
    section: str = ""
    what: str = ""
    default: str | None = None
    strict: bool = False  # the raw value goes through int()/float(): an empty value stops the process
    readers: set = field(default_factory=set)  # processes (PROCESS_FILES' values)
    native: str | None = None  # how native mode gets it
    native_default: str | None = None
    make: bool = False
    example: str | None = None  # value in .env.example
    compose: list = field(default_factory=list)  # (file, service, key, kind, value)
    chart: list = field(default_factory=list)  # (template, text)


# --- Python: reads of the environment -------------------------------------------------------------


class _Evaluator:
    """Renders a default given as a Python expression: constants, str()/int()/float() of one, numbers
    combined with + - * /, f-strings of constants and PORTS[...] (the default stack's ports), and
    module-level names bound to one of these."""

    def __init__(self, tree):
        self.names = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.names[node.targets[0].id] = node.value

    def __call__(self, node, depth=0):
        if depth > 5:
            raise ValueError
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.names:
            return self(self.names[node.id], depth + 1)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("str", "int", "float"):
            return {"str": str, "int": int, "float": float}[node.func.id](self(node.args[0], depth + 1))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            left, right = self(node.left, depth + 1), self(node.right, depth + 1)
            ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}
            ops[ast.Div] = lambda a, b: a / b
            return ops[type(node.op)](left, right)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in ("PORTS",):
            return BASE_PORTS[self(node.slice, depth + 1)]
        if isinstance(node, ast.JoinedStr):
            return "".join(
                str(self(v.value, depth + 1)) if isinstance(v, ast.FormattedValue) else str(v.value)
                for v in node.values
            )
        raise ValueError(ast.unparse(node))


def _text(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _environ_get(call):
    """`os.environ.get`, `environ.get`, `os.getenv`: the process's environment."""
    f = call.func
    if isinstance(f, ast.Attribute) and f.attr == "get":
        v = f.value
        return (isinstance(v, ast.Attribute) and v.attr == "environ") or (isinstance(v, ast.Name) and v.id == "environ")
    return isinstance(f, ast.Attribute) and f.attr == "getenv"


def _env_method(call, methods=("get", "setdefault")):
    """`env.get(...)` / `env.setdefault(...)`: native mode's merged environment (.env and the shell)."""
    f = call.func
    return isinstance(f, ast.Attribute) and f.attr in methods and isinstance(f.value, ast.Name) and f.value.id == "env"


def _first_str(call):
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def scan_python(path):
    """[(name, kind, default node or None, strict)] of the environment reads in one file.

    kind: "environ" (the process's own environment), "env" (native mode's merged environment),
    "sets" (native mode sets it when unset)."""
    tree = ast.parse((REPO / path).read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []

    def strict(node):
        parent = parents.get(node)
        return isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id in ("int", "float")

    flower = path == "worker/flowerconfig.py"
    # A helper `_env(name, default)` that returns `... or default` treats an empty value as unset.
    empty_safe = any(
        isinstance(node, ast.FunctionDef)
        and node.name == "_env"
        and any(isinstance(r.value, ast.BoolOp) for r in ast.walk(node) if isinstance(r, ast.Return))
        for node in tree.body
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _first_str(node)
            default = node.args[1] if len(node.args) > 1 else None
            if name and _environ_get(node):
                parent = parents.get(node)
                if isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.Or) and parent.values[0] is node:
                    default = parent.values[1]
                found.append((name, "environ", default, strict(node)))
            elif name and isinstance(node.func, ast.Name) and node.func.id in ("_env", "_flag", "_number"):
                name = ("FLOWER_" + name.upper()) if flower else name
                found.append((name, "environ", default, strict(node) and not empty_safe))
            elif name and _env_method(node, ("get",)):
                found.append((name, "env", None, False))
            elif name and _env_method(node, ("setdefault",)):
                found.append((name, "sets", default, False))
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "Option":
                kw = {k.arg: k.value for k in node.keywords}
                if "envvar" in kw:
                    found.append((kw["envvar"].value, "environ", kw.get("default"), False))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.isupper():
                base = node.value
                if isinstance(base, ast.Attribute) and base.attr == "environ":
                    found.append((key.value, "environ", None, strict(node)))
                elif isinstance(base, ast.Name) and base.id == "env":
                    found.append((key.value, "env", None, False))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id == "DEFAULTS" and isinstance(node.value, ast.Dict):
                for k, v in zip(node.value.keys, node.value.values, strict=True):
                    found.append((k.value, "sets", v, False))
    return tree, found


# --- make, scripts, .env.example ------------------------------------------------------------------


def make_settings():
    """{name: default or None} of the Makefile's user settings: `?=` ones, exported ones, and those its
    recipes use without defining them."""
    text = (REPO / "Makefile").read_text()
    defined = set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*(?::=|=)", text, re.M))
    found = dict(re.findall(r"^([A-Z][A-Z0-9_]*)\s*\?=\s*(.*?)\s*$", text, re.M))
    for line in re.findall(r"^export\s+(.+)$", text, re.M):
        for name in line.split():
            found.setdefault(name, None)
    for name in re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", text):
        if name not in defined and name not in ("MAKE", "SHELL"):
            found.setdefault(name, None)
    return found


def script_settings():
    """{name: default or None}: `X=${X:-default}` lines of the scripts and `${X...}` of names they
    never assign."""
    found = {}
    for script in SCRIPTS:
        text = (REPO / script).read_text()
        assigned = set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)=", text, re.M))
        for name, default in re.findall(r"^([A-Z][A-Z0-9_]*)=\$\{\1:-(.*)\}\s*$", text, re.M):
            found[name] = default.replace("$ROOT/", "") or None
        for name in re.findall(r"\$\{([A-Z][A-Z0-9_]*)[:}-]", text):
            if name not in assigned:
                found.setdefault(name, None)
    return found


def env_example():
    """{name: value} of .env.example's assignments, commented ones included."""
    text = (REPO / ".env.example").read_text()
    return dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*?)\s*$", text, re.M))


# --- compose ---------------------------------------------------------------------------------------


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags (!override, !reset) read as the value they tag."""


def _untagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


ComposeLoader.add_multi_constructor("!", _untagged)
INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::?[-?+]([^}]*))?\}")


def compose_entries():
    """[(file, service, key, variable, kind, value)]: kind "env" (the container gets the variable as it
    is in .env, `value` its compose default if any), "set" (compose sets `value`), "in" (the variable
    goes into `key` of that service)."""
    entries = []
    for file in COMPOSE_FILES:
        model = yaml.load((REPO / file).read_text(), Loader=ComposeLoader) or {}
        for service, spec in (model.get("services") or {}).items():
            environment = spec.get("environment") or {}
            for key, value in environment.items():
                if value is None:
                    entries.append((file, service, key, key, "env", None))
                    continue
                value = str(value)
                refs = INTERPOLATION.findall(value)
                if any(name == key for name, _ in refs):
                    default = next(d for name, d in refs if name == key)
                    entries.append((file, service, key, key, "env", default or None))
                else:
                    entries.append((file, service, key, key, "set", value))
                for name, _ in refs:
                    if name != key:
                        entries.append((file, service, key, name, "in", value))
            rest = {k: v for k, v in spec.items() if k != "environment"}
            for name, _ in INTERPOLATION.findall(yaml.safe_dump(rest)):
                entries.append((file, service, "-", name, "in", None))
        for secret, spec in (model.get("secrets") or {}).items():
            if "environment" in spec:
                entries.append((file, "alertmanager", f"secret {secret}", spec["environment"], "env", None))
    return entries


def _chart_values(text):
    """{$variable: values path} of a template's `{{- $x := .Values.a.b }}` and `{{- $y := $x.c }}` lines."""
    names = {}
    for var, expr in re.findall(r"\{\{-?\s*(\$\w+)\s*:=\s*([$.\w]+)\s*\}\}", text):
        if expr.startswith(".Values."):
            names[var] = expr[len(".Values.") :]
        elif expr.split(".")[0] in names:
            head, _, rest = expr.partition(".")
            names[var] = f"{names[head]}.{rest}" if rest else names[head]
    return names


def _chart_ref(expr, names):
    head, _, rest = expr.partition(".")
    if head in names:
        return f"{names[head]}.{rest}" if rest else names[head]
    return expr.removeprefix(".Values.")


def chart_entries():
    """{variable: [text]}: how the chart's templates set each environment variable of a container
    (the value that sets it, a literal, or a Secret; with the condition it is set under)."""
    found = {}
    for template in sorted(CHART_TEMPLATES.glob("*.yaml")):
        text = template.read_text()
        names = _chart_values(text)
        lines = text.splitlines()
        conditions = []
        for i, line in enumerate(lines):
            m = re.match(r"\s*\{\{-?\s*(if|with|range|end)\b\s*(.*?)\s*-?\}\}", line)
            if m:
                if m.group(1) == "end":
                    if conditions:
                        conditions.pop()
                else:
                    conditions.append(m.group(2) if m.group(1) == "if" else None)
                continue
            m = re.match(r"(\s*)- name: ([A-Z][A-Z0-9_]*)\s*$", line)
            if not m:
                continue
            indent, body = len(m.group(1)), []
            for follow in lines[i + 1 :]:
                if not follow.strip() or len(follow) - len(follow.lstrip()) <= indent:
                    break
                body.append(follow.strip())
            body = " ".join(body)
            ref = re.search(r"value:\s*\{\{\s*([$.\w]+)", body)
            if ref:
                how = f"`{_chart_ref(ref.group(1), names)}`"
            elif "valueFrom" in body:
                how = "from a Secret"
            else:
                literal = re.search(r"value:\s*(.+)", body)
                how = f"`{literal.group(1).strip().strip(chr(34))}`" if literal else "set"
            condition = next((c for c in reversed(conditions) if c), None)
            if condition:
                negated = condition.startswith("not ")
                ref = condition.removeprefix("not ").strip()
                ref = _chart_ref(ref, names) if re.fullmatch(r"[$.\w]+", ref) else ""
                # The template's own switch (`flower.enabled`) goes without saying.
                if ref and not re.fullmatch(r"\w+\.enabled", ref):
                    how += f" ({'without' if negated else 'with'} `{ref}`)"
            found.setdefault(m.group(2), []).append(how)
    return found


# --- putting it together ----------------------------------------------------------------------------


def _read_by_processes(get):
    """The processes' own reads: who reads each variable, its default, whether it may be empty."""
    for path, process in PROCESS_FILES.items():
        tree, found = scan_python(path)
        evaluate = _Evaluator(tree)
        for name, _kind, default, strict in found:
            s = get(name)
            s.readers.add(process)
            s.strict = s.strict or strict
            if default is not None and s.default is None:
                try:
                    value = evaluate(default)
                except (ValueError, KeyError):
                    value = None
                if value not in (None, ""):
                    s.default = f"`{_text(value)}`"


def _read_by_native_mode(get):
    """Native mode's own reads, and the values it supplies when a variable is unset."""
    for path in NATIVE_FILES:
        tree, found = scan_python(path)
        evaluate = _Evaluator(tree)
        for name, kind, default, _ in found:
            if name in ("PYTHONPATH", "PYTHONUNBUFFERED"):
                continue
            s = get(name)
            if kind == "environ":
                s.native = "environment only"
            elif s.native is None:
                s.native = "`.env`"
            if kind == "sets" and default is not None:
                try:
                    s.native_default = f"`{_text(evaluate(default))}`"
                except (ValueError, KeyError):
                    s.native_default = "set by native/env.py"
    from native import derive

    for name in [var for var, *_ in derive.AM_SECRETS] + [derive.WEBHOOK_TOKEN]:
        get(name).native = "`.env`"


def _finish(s):
    """The texts of one setting: its section and description, default and native mode's value."""
    s.section, s.what = DESCRIPTIONS.get(s.name, ("undescribed", ""))
    if s.name in NATIVE_DEFAULT_TEXT:
        s.native_default = NATIVE_DEFAULT_TEXT[s.name]
    if s.name in DEFAULT_TEXT:
        s.default = DEFAULT_TEXT[s.name] or latency_buckets_text()
    if s.default is None:
        if s.example and s.example != PLACEHOLDER:
            s.default = f"`{s.example}`"
        elif s.example == PLACEHOLDER:
            s.default = "random, written by `make up`"
        else:
            s.default = "unset"
    compose_default = next((v for _, _, k, kind, v in s.compose if kind == "env" and k == s.name and v), None)
    if s.default == "unset" and compose_default:
        s.default = f"`{compose_default}`"
    if s.readers and s.native is None:
        s.native = "`.env`"


def collect():
    """{name: Setting} of every variable something of the bundle reads."""
    settings = {}

    def get(name):
        return settings.setdefault(name, Setting(name))

    _read_by_processes(get)
    _read_by_native_mode(get)
    for source in (make_settings(), script_settings()):
        for name, default in source.items():
            s = get(name)
            s.make = True
            if default and s.default is None:
                s.default = f"`{default}`"
    for name, value in env_example().items():
        get(name).example = value
    for file, service, key, name, kind, value in compose_entries():
        if kind == "set" and name not in settings:
            continue  # a container's own setting (GF_*, RABBITMQ_*, ...), not one of the bundle's
        get(name).compose.append((file, service, key, kind, value))
    for name, hows in chart_entries().items():
        if name in settings:
            settings[name].chart.extend(hows)
    # Described ones in the order of DESCRIPTIONS, then any the code reads without a description
    # (rendered apart, so that tests/docs/test_configuration.py names them); descriptions of variables
    # nothing reads any more are left out (stale_descriptions() names them).
    undescribed = sorted(set(settings) - set(DESCRIPTIONS))
    settings = {name: settings[name] for name in [*DESCRIPTIONS, *undescribed] if name in settings}
    for s in settings.values():
        _finish(s)
    return settings


def latency_buckets_text():
    """worker/settings.py's DEFAULT_TASK_LATENCY_BUCKETS, shortened."""
    tree = ast.parse((REPO / "worker" / "settings.py").read_text())
    node = next(
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "DEFAULT_TASK_LATENCY_BUCKETS"
    )
    bounds = ast.literal_eval(node)
    return f"`{_text(bounds[0])},{_text(bounds[1])},…,{_text(bounds[-1])}` ({len(bounds)} bounds)"


def _plain(value):
    """A compose value with its interpolations shortened: `${X:?message}` and `${X:-d}` as `$X`."""
    return INTERPOLATION.sub(lambda m: f"${m.group(1)}", value)


def stale_descriptions(settings=None):
    """Names DESCRIPTIONS describes that nothing reads any more."""
    settings = settings or collect()
    return sorted(set(DESCRIPTIONS) - set(settings))


def _services(items):
    return ", ".join(dict.fromkeys(items))


def compose_cell(s):
    if not s.compose:
        return f"— ({COMPOSE_OMITTED[s.name]})" if s.name in COMPOSE_OMITTED else "—"
    parts = []
    for file in COMPOSE_FILES:
        mine = [e for e in s.compose if e[0] == file]
        if not mine:
            continue
        prefix = "" if file == "compose.yaml" else f"{file}: "
        passed = [svc for _, svc, key, kind, _ in mine if kind == "env"]
        fixed = {}
        for _, svc, _key, kind, value in mine:
            if kind == "set":
                fixed.setdefault(value, []).append(svc)
        into = [f"{svc} `{key}`" if key != "-" else svc for _, svc, key, kind, _ in mine if kind == "in"]
        text = []
        if passed:
            text.append(f"`.env` → {_services(passed)}")
        for value, svcs in fixed.items():
            text.append(f"`{_plain(value)}` ({_services(svcs)})")
        if into:
            text.append(f"`.env` → {_services(into)}")
        parts.append(prefix + "; ".join(text))
    return "; ".join(parts)


def native_cell(s):
    if s.native is None:
        return "—"
    if s.native_default and s.native_default != s.default:
        return f"{s.native}; unset: {s.native_default}"
    return s.native


def _cell(text):
    return text.replace("|", "\\|")


def render(settings=None):
    settings = settings or collect()
    lines = [
        "<!-- GENERATED by `python -m mixin` (mixin/settings_reference.py) from the files that read each "
        "setting. Do not edit by hand. -->",
        "",
        "# Configuration reference",
        "",
        "Every setting of the bundle: its default, where it is read, and whether each way of running the "
        "bundle passes it on. Set them in `.env` (`make up` writes it from .env.example) or in the environment.",
        "",
        "Both paths read `.env` alike, as python-dotenv does: `KEY=value`, `export KEY=value`, spaces around "
        "`=`, 'single' or \"double\" quotes, `#` comments, no `${VAR}` expansion. Keep each value on one line "
        "and without backslash escapes (python-dotenv decodes them, the Docker path's POSIX reader does not). "
        "`make up` adds to an existing `.env` the keys of .env.example it lacks, and never changes a value.",
        "",
        "- **native**: native mode gives every process it starts the whole of `.env` and the shell's "
        "environment (`.env`), or reads the variable from the environment only; *unset* is the value native "
        "mode supplies when neither has it.",
        "- **compose**: what compose.yaml and its overrides do: `.env` → services: passed from `.env` as it "
        "is when set there (unset: the default column); a value: compose sets it, `.env` does not change it; "
        "—: not passed, the default applies.",
        "- **chart**: the value of the Helm chart that sets it, or —: the chart does not set it (it runs the "
        "exporter and Flower, not your app or workers; `exporter.extraEnv` and `flower.extraEnv` add others).",
        "- A default marked *(not empty)* goes through `int()` or `float()`: an empty value stops the process "
        "at start; leave the line out instead.",
        "",
    ]
    for key, (title, intro) in SECTIONS.items():
        rows = [s for s in settings.values() if s.section == key]
        if not rows:
            continue
        lines += [f"## {title}", ""]
        if intro:
            lines += [intro, ""]
        if key == "make":
            lines += ["| variable | default | what |", "|---|---|---|"]
            for s in rows:
                lines.append(f"| `{s.name}` | {_cell(s.default)} | {_cell(s.what)} |")
        else:
            lines += ["| variable | default | native | compose | chart | what |", "|---|---|---|---|---|---|"]
            for s in rows:
                default = s.default + (" *(not empty)*" if s.strict else "")
                chart = ", ".join(dict.fromkeys(s.chart)) if s.chart else "—"
                cells = (default, native_cell(s), compose_cell(s), chart, s.what)
                lines.append(f"| `{s.name}` | " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def generate():
    text = render()
    if not OUT.exists() or OUT.read_text() != text:
        OUT.write_text(text)
    return [OUT]
