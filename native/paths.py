"""Where native mode keeps its state: everything under .native/ in the repo (git-ignored)."""
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".native"
RUN = STATE / "run"            # pid files
LOGS = STATE / "logs"          # one log per service
DATA = STATE / "data"          # Prometheus TSDB, Alertmanager, Flower db, own broker/redis
GENERATED = STATE / "generated"  # configs derived from prometheus/, alertmanager/

VENV_BIN = REPO / ".venv" / "bin"
EXPORTER_VENV_BIN = REPO / ".venv-exporter" / "bin"


def ensure():
    for d in (RUN, LOGS, DATA, GENERATED):
        d.mkdir(parents=True, exist_ok=True)
