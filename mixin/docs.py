"""The parts of the docs that state thresholds, generated from the mixin.

Each such part sits between two markers in a Markdown file:
    <!-- BEGIN GENERATED <name>: python -m mixin -->  ...  <!-- END GENERATED <name> -->
`python -m mixin` rewrites what is between them; tests fail when a file drifts. Prose around the
blocks names the knob (e.g. `success_ratio_min`) rather than restating its value.
"""

import re
from pathlib import Path

from mixin import alerts, dashboards, profiles
from mixin.config import Config

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = REPO / "docs" / "runbooks"


def _block(name, body):
    return f"<!-- BEGIN GENERATED {name}: python -m mixin -->\n{body.rstrip()}\n<!-- END GENERATED {name} -->"


def fill(text, name, body, path="text"):
    pattern = re.compile(
        rf"<!-- BEGIN GENERATED {re.escape(name)}: python -m mixin -->\n.*?"
        rf"<!-- END GENERATED {re.escape(name)} -->",
        re.S,
    )
    if not pattern.search(text):
        raise ValueError(f"{path}: no generated block {name!r}")
    return pattern.sub(lambda _: _block(name, body), text)


def value_text(knob, value):
    if knob.endswith("_bytes_per_s"):
        return f"{value * 60 / 2**20:g} MiB/min"
    if "ratio" in knob and isinstance(value, float) and value <= 1:
        return f"{value * 100:g}%"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def thresholds_table(
    cfg,
    header=(
        "knob (`thresholds:` in the mixin configuration)",
        "value",
        "fast profile (live tests)",
        "kubernetes profile",
    ),
):
    t = cfg.thresholds.knobs()
    fast, k8s = profiles.apply("fast", cfg).thresholds.knobs(), profiles.apply("kubernetes", cfg).thresholds.knobs()
    rows = [f"| {' | '.join(header)} |", "|---|---|---|---|"]
    for knob, value in t.items():
        rows.append(
            f"| `{knob}` | {value_text(knob, value)} | {value_text(knob, fast[knob])} | {value_text(knob, k8s[knob])} |"
        )
    return "\n".join(rows)


def alerts_table(cfg):
    rows = ["| alert | fires when | severity | runbook |", "|---|---|---|---|"]
    for a in {a.name: a for a in alerts.build(cfg)}.values():  # one row per alert name
        rows.append(f"| {a.name} | {a.when} | {a.severity} | [{a.name}](runbooks/{a.name}.md) |")
    return "\n".join(rows)


def fires_when(alert, cfg):
    title = dashboards.BUILDERS[alert.dashboard](cfg)["title"]
    return (
        f"**Severity:** {alert.severity}. **Fires when** {alert.when} (standard profile; the knobs "
        f"and their values are in the thresholds table of docs/alerts.md). Dashboard: *{title}*."
    )


def documents(cfg=None):
    """{path: {block name: body}} for every generated block, for cfg (default: the bundle's)."""
    cfg = cfg or Config()
    ru_header = (
        "параметр (`thresholds:` в конфигурации миксина)",
        "значение",
        "профиль fast (живые тесты)",
        "профиль kubernetes",
    )
    docs = {
        REPO / "docs" / "alerts.md": {"alerts": alerts_table(cfg), "thresholds": thresholds_table(cfg)},
        REPO / "docs" / "guide.md": {"thresholds": thresholds_table(cfg)},
        REPO / "docs" / "guide.ru.md": {"thresholds": thresholds_table(cfg, ru_header)},
    }
    for alert in {a.name: a for a in alerts.build(cfg)}.values():
        docs[RUNBOOKS / f"{alert.name}.md"] = {"fires-when": fires_when(alert, cfg)}
    return docs


def rendered(cfg=None):
    """{path: new text} with every block filled for cfg (default: the bundle's)."""
    out = {}
    for path, blocks in documents(cfg).items():
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
