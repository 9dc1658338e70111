"""Reading the Markdown docs: their code blocks, shell commands, tables and the examples they show.
Shared by the static doc checks (test_docs_static.py), the live doc runner (test_docs_live.py) and
the scaling test (tests/e2e/test_scaling.py)."""

import pathlib
import re
import shlex

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDE_EN = ROOT / "docs" / "guide.md"
GUIDE_RU = ROOT / "docs" / "guide.ru.md"
USER_DOCS = [README, GUIDE_EN, GUIDE_RU]
ALL_DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
RULES = ROOT / "alerts" / "celery.rules.yml"
DASHBOARDS = sorted((ROOT / "grafana" / "provisioning" / "dashboards").glob("*.json"))

FENCE_RE = re.compile(r"^```([\w.+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
INLINE_CODE_RE = re.compile(r"`([^`\n]+)`")
LINK_RE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
LOCAL_URL_RE = re.compile(r"https?://localhost:(\d+)(/[^\s`'\"()\]*]*)?")
SHELLS = ("bash", "sh", "shell", "console")
# Ports the docs show only as an example of changing one (the guides' "Port" section).
EXAMPLE_PORTS = {5556}


def read(path):
    return path.read_text(encoding="utf-8")


def rel(path):
    return path.relative_to(ROOT)


def fences(path):
    """[(language, body)] of the fenced code blocks, in document order."""
    return [(m.group(1).lower(), m.group(2)) for m in FENCE_RE.finditer(read(path))]


def prose(path):
    """The text outside fenced code blocks."""
    return FENCE_RE.sub("", read(path))


def code_snippets(path):
    """Every piece of code: fenced blocks and inline code spans."""
    return [body for _, body in fences(path)] + INLINE_CODE_RE.findall(prose(path))


def shell_commands(body):
    """The commands of a shell block: continuation lines joined, blank and comment-only lines dropped."""
    commands, current = [], ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip() and not current.strip().startswith("#"):
            commands.append(current.strip())
        current = ""
    return commands


def tokens(command):
    return shlex.split(command, comments=True)


def shell_blocks(path):
    """[[tokens of each command]] per ```bash block, in document order."""
    return [[tokens(c) for c in shell_commands(body)] for lang, body in fences(path) if lang in SHELLS]


def load_rules():
    alerts = {}
    for group in yaml.safe_load(read(RULES))["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts[rule["alert"]] = rule
    return alerts


def recorded_names():
    return {r["record"] for g in yaml.safe_load(read(RULES))["groups"] for r in g["rules"] if "record" in r}


def markdown_table(path, first_header):
    """Rows (lists of cells) of the first table whose first header cell is `first_header`."""
    lines = read(path).splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if (
            line.startswith("|")
            and cells[0].lower() == first_header
            and i + 1 < len(lines)
            and set(lines[i + 1].replace("|", "").strip()) <= set("-: ")
        ):
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"{rel(path)} has no table starting with the header {first_header!r}")


def make_loadtest_examples(docs=USER_DOCS):
    """{(scenario, args)} of every `make loadtest ...` in the code of the docs."""
    examples = set()
    for doc in docs:
        for code in code_snippets(doc):
            for line in code.splitlines():
                m = re.search(r"(?:^|\s)make loadtest(?:\s|$)(.*)", line)
                if m:
                    assigns = dict(t.split("=", 1) for t in tokens(m.group(1)) if "=" in t)
                    examples.add((assigns.get("SCENARIO", ""), assigns.get("ARGS", "")))
    return examples


def scale_examples():
    found = set()
    for doc in USER_DOCS:
        for block in shell_blocks(doc):
            for argv in block:
                if argv[-2:] == ["make", "up"] and argv[0].startswith("WORKERS="):
                    found.add(int(argv[0].split("=", 1)[1]))
    return found
