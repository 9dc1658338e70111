"""Reading the Markdown docs: their code blocks, shell commands, tables and the examples they show.
Shared by the static doc checks (test_docs_static.py), the live doc runner (test_docs_live.py), the
configuration and screenshot checks and the scaling test (tests/e2e/test_scaling.py)."""

import pathlib
import re
import shlex

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDE_EN = ROOT / "docs" / "guide.md"
GUIDE_RU = ROOT / "docs" / "guide.ru.md"
CHART_README = ROOT / "charts" / "celery-observability" / "README.md"
USER_DOCS = [README, GUIDE_EN, GUIDE_RU]
ALL_DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
# Every page whose commands the doc tests check: the README, docs/ (runbooks included), the chart's.
COMMAND_DOCS = [*ALL_DOCS, CHART_README]
RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
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


# The first word of a command the docs show (after any VAR=value assignments).
COMMAND_WORDS = (
    "make",
    "curl",
    "docker",
    "kubectl",
    "helm",
    "kind",
    "promtool",
    "amtool",
    "celery",
    "redis-cli",
    "kill",
    "grep",
    "top",
    "sudo",
    "cp",
    "cd",
)
PYTHON_RE = re.compile(r"^(?:\.venv/bin/)?python3? -m (\w+)")
ASSIGNMENT_RE = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def split_pipeline(command):
    """The simple commands of a shell line, its comment dropped: split at `;`, `&&`, `||` and a `|`
    between spaces, outside quotes (`fast|kubernetes` in a synopsis stays one word); surrounding
    `(` and `)` removed."""
    parts, current, quote = [], "", None
    i = 0
    while i < len(command):
        c = command[i]
        if quote:
            current += c
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            current += c
        elif c == "#" and (not current or current[-1].isspace()):
            break
        elif command.startswith(("&&", "||"), i):
            parts.append(current)
            current = ""
            i += 1
        elif c == ";" or (c == "|" and command[i - 1 : i].isspace() and command[i + 1 : i + 2].isspace()):
            parts.append(current)
            current = ""
        else:
            current += c
        i += 1
    parts.append(current)
    return [p.strip().strip("()").strip() for p in parts if p.strip().strip("()").strip()]


def is_command(text):
    """Whether an inline code span is a command a reader would run (a program and its arguments)."""
    words = [w for w in text.split() if not ASSIGNMENT_RE.match(w)]
    if len(words) < 2:
        return False
    return words[0] in COMMAND_WORDS or bool(PYTHON_RE.match(" ".join(words)))


def doc_commands(path):
    """[(command, where)] of every command in a document: each command of its shell blocks and every
    inline code span that is one (`make up`, `curl ...`, `.venv/bin/python -m ...`)."""
    found = []
    for lang, body in fences(path):
        if lang in SHELLS:
            found += [(c, "block") for c in shell_commands(body)]
    for span in INLINE_CODE_RE.findall(prose(path)):
        if is_command(span) or re.fullmatch(r"(?:[A-Z_]+=\S+ )*make [a-z][\w-]*.*", span):
            found.append((span, "inline"))
    return found


def simple_commands(path):
    """[(argv, command)] of every simple command (pipelines and lists split) in a document, comments
    dropped; VAR=value assignments in front stay in argv."""
    out = []
    for command, _ in doc_commands(path):
        for part in split_pipeline(command):
            try:
                argv = tokens(part)
            except ValueError:
                raise AssertionError(f"{rel(path)}: cannot parse {part!r}") from None
            if argv:
                out.append((argv, part))
    return out


def program(argv):
    """({VAR: value} of the assignments in front, the command's own words)."""
    i = 0
    while i < len(argv) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[i]):
        i += 1
    return dict(a.split("=", 1) for a in argv[:i]), argv[i:]


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
