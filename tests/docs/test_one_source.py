"""One source of truth: a threshold changed in the configuration moves every document that states it.

The generated blocks of the docs (the alert and threshold tables of docs/alerts.md, the guides'
threshold tables, each runbook's "fires when" line) are what `python -m mixin` writes. Rendered for a configuration
with three thresholds changed, no document states an old value any more: the prose around the
blocks names the knob rather than restating its value.
"""

import re

from mixin import docs
from mixin.config import build

# Changed knobs and the way a document would state their old values.
CHANGES = {
    "success_ratio_min": (0.9, re.compile(r"(?<![\w.])95 ?%")),
    "worker_cpu_ratio_max": (0.75, re.compile(r"(?<![\w.])80 ?%")),
    "worker_memory_growth_bytes_per_s": (2 * 1024 * 1024 / 60, re.compile(r"(?<![\w.])1 MiB")),
}


def test_generated_blocks_are_what_the_mixin_writes():
    stale = [str(p.relative_to(docs.REPO)) for p, text in docs.rendered().items() if p.read_text() != text]
    assert not stale, f"run `python -m mixin`: {stale} drifted"


def test_every_runbook_and_the_alerts_page_have_their_generated_blocks():
    for path, blocks in docs.documents().items():
        for name in blocks:
            assert f"<!-- BEGIN GENERATED {name}:" in path.read_text(), f"{path.name} lacks block {name}"


def test_after_a_change_no_document_states_an_old_value():
    changed = build({"thresholds": {knob: value for knob, (value, _) in CHANGES.items()}})
    rendered = docs.rendered(changed)
    paths = [docs.REPO / "README.md", *sorted((docs.REPO / "docs").rglob("*.md"))]
    found = [
        f"{path.relative_to(docs.REPO)}: {pattern.pattern} in {m.group(0)!r}"
        for path in paths
        if not path.name.startswith("performance")
        for _, pattern in CHANGES.values()
        for m in pattern.finditer(rendered.get(path) or path.read_text())
    ]
    assert not found, "documents still state old values:\n" + "\n".join(found)
    # The changed values are stated where the blocks are.
    page = rendered[docs.REPO / "docs" / "alerts.md"]
    assert "| `success_ratio_min` | 90% |" in page and "| `worker_cpu_ratio_max` | 75% |" in page
