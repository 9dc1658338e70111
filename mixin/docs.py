"""The parts of the docs that state thresholds, generated from the mixin.

Each such part sits between two markers in a Markdown file:
    <!-- BEGIN GENERATED <name>: python -m mixin -->  ...  <!-- END GENERATED <name> -->
`python -m mixin` rewrites what is between them; tests fail when a file drifts. Prose around the
blocks names the knob (e.g. `success_ratio_min`) rather than restating its value.
"""
import re
from pathlib import Path

from mixin import profiles, rules

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = REPO / "docs" / "runbooks"


def _block(name, body):
    return (f"<!-- BEGIN GENERATED {name}: python -m mixin -->\n{body.rstrip()}\n"
            f"<!-- END GENERATED {name} -->")


def fill(text, name, body, path="text"):
    pattern = re.compile(rf"<!-- BEGIN GENERATED {re.escape(name)}: python -m mixin -->\n.*?"
                         rf"<!-- END GENERATED {re.escape(name)} -->", re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: no generated block {name!r}")
    return pattern.sub(lambda _: _block(name, body), text)


def value_text(knob, value):
    if knob.endswith("_bytes_per_s"):
        return f"{value * 60 / 2**20:g} MiB/min"
    if "ratio" in knob and isinstance(value, float) and value <= 1:
        return f"{value * 100:g}%"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def thresholds_table(header=("knob in mixin/config.py", "value", "fast profile (live tests)", "kubernetes profile")):
    t = profiles.standard().thresholds
    fast, k8s = profiles.fast().thresholds, profiles.kubernetes().thresholds
    rows = [f"| {' | '.join(header)} |", "|---|---|---|---|"]
    for knob, value in t.items():
        rows.append(f"| `{knob}` | {value_text(knob, value)} | {value_text(knob, fast[knob])} | "
                    f"{value_text(knob, k8s[knob])} |")
    return "\n".join(rows)


def alerts_table():
    rows = ["| alert | fires when | severity | runbook |", "|---|---|---|---|"]
    for a in rules.alerts(profiles.standard().thresholds):
        rows.append(f"| {a.name} | {a.when} | {a.severity} | [{a.name}](docs/runbooks/{a.name}.md) |")
    return "\n".join(rows)


DASHBOARD_TITLES = {"overview": "Celery / Overview", "tasks": "Celery / Tasks", "workers": "Celery / Workers",
                    "broker": "RabbitMQ / Broker"}


def fires_when(alert):
    return (f"**Severity:** {alert.severity}. **Fires when** {alert.when} (standard profile; the knobs "
            f"and their values are in the README's thresholds table). Dashboard: *{DASHBOARD_TITLES[alert.dashboard]}*.")


def documents():
    """{path: {block name: body}} for every generated block."""
    ru_header = ("параметр в mixin/config.py", "значение", "профиль fast (живые тесты)", "профиль kubernetes")
    docs = {
        REPO / "README.md": {"alerts": alerts_table(), "thresholds": thresholds_table()},
        REPO / "docs" / "guide.md": {"thresholds": thresholds_table()},
        REPO / "docs" / "guide.ru.md": {"thresholds": thresholds_table(ru_header)},
    }
    for alert in rules.alerts(profiles.standard().thresholds):
        docs[RUNBOOKS / f"{alert.name}.md"] = {"fires-when": fires_when(alert)}
    return docs


def rendered():
    """{path: new text} with every block filled."""
    out = {}
    for path, blocks in documents().items():
        text = path.read_text()
        for name, body in blocks.items():
            text = fill(text, name, body, path.relative_to(REPO))
        out[path] = text
    return out


def generate():
    written = []
    for path, text in rendered().items():
        if path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written

