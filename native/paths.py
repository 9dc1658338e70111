"""Where native mode keeps its state: everything under .native/ in the repo (git-ignored); a second
stack on the same machine (NATIVE_INSTANCE=<name>, with its own ports: native/ports.py) under
.native/instances/<name>/."""

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def instance(environ=os.environ):
    """NATIVE_INSTANCE: "" (the default stack) or a name of lowercase letters, digits and dashes."""
    name = environ.get("NATIVE_INSTANCE", "").strip()
    if name and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", name):
        raise ValueError(f"NATIVE_INSTANCE must be lowercase letters, digits and dashes, got {name!r}")
    return name


INSTANCE = instance()
STATE = REPO / ".native" / "instances" / INSTANCE if INSTANCE else REPO / ".native"
RUN = STATE / "run"  # pid files
LOGS = STATE / "logs"  # one log per service
DATA = STATE / "data"  # Prometheus TSDB, Alertmanager, Flower db, own broker/redis
GENERATED = STATE / "generated"  # configs derived from prometheus/, alertmanager/

VENV_BIN = REPO / ".venv" / "bin"
EXPORTER_VENV_BIN = REPO / ".venv-exporter" / "bin"


def ensure():
    for d in (RUN, LOGS, DATA, GENERATED):
        d.mkdir(parents=True, exist_ok=True)
