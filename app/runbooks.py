"""Runbooks served as HTML pages: docs/runbooks/<AlertName>.md rendered with markdown-it-py.

Alert annotations link here (runbook_url = <RUNBOOK_BASE_URL>/<AlertName>). Pages are rendered
once per file version (cached by modification time), raw HTML inside the Markdown is escaped.
"""

import re
from pathlib import Path

from markdown_it import MarkdownIt

# The alert names of the rules: CamelCase letters and digits. Anything else is not a runbook.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,99}$")

# CommonMark plus tables; html=False keeps any raw HTML in a runbook as text; linkify off (the
# runbooks write their links out).
_md = MarkdownIt("commonmark", {"html": False}).enable("table")
_cache = {}


class UnknownRunbook(LookupError):
    pass


def names(directory: Path):
    return sorted(p.stem for p in directory.glob("*.md") if NAME.match(p.stem))


def render(directory: Path, name: str):
    """(title, html) of the runbook `name`; UnknownRunbook when there is no such file."""
    if not NAME.match(name):
        raise UnknownRunbook(name)
    path = directory / f"{name}.md"
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise UnknownRunbook(name) from None
    hit = _cache.get(path)
    if hit and hit[0] == mtime:
        return hit[1]
    text = path.read_text(encoding="utf-8")
    first = text.lstrip().splitlines()[0] if text.strip() else name
    title = first.lstrip("# ").strip() if first.startswith("#") else name
    page = (title, _md.render(text))
    _cache[path] = (mtime, page)
    return page
