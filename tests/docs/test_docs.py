"""The docs cannot drift from the code.

Static (no marker): relative links resolve; every `make <target>` the README and guides mention exists;
the URLs table's ports are the ones compose.yaml publishes and prometheus.yml scrapes; Flower and app
URLs in the docs are real routes; dashboard, panel, alert and recording-rule names exist; every
`make loadtest` example parses; both guides show the same commands.

Live (marker `stack`, on the session's native stack): the command examples of the README and the
guides, taken from their ```bash blocks — the curl calls to the app and to Flower's API (with
<task-id> filled in: the task the docs just submitted, a running one for a revoke), the
`make loadtest SCENARIO=burst ...` examples, the scale command in native form — and every
plain URL they show.
"""
import json
import pathlib
import re
import shlex
import subprocess
import sys

import pytest
import requests
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
        if line.startswith("|") and cells[0].lower() == first_header and i + 1 < len(lines) \
                and set(lines[i + 1].replace("|", "").strip()) <= set("-: "):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"{rel(path)} has no table starting with the header {first_header!r}")


# --- static ------------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", ALL_DOCS, ids=lambda p: str(rel(p)))
def test_relative_links_resolve(doc):
    missing = []
    for target in LINK_RE.findall(INLINE_CODE_RE.sub("", prose(doc))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # http(s)://, mailto:, an anchor in the same page
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (doc.parent / path).exists():
            missing.append(target)
    assert not missing, f"{rel(doc)} links to files that do not exist: {missing}"


def makefile_targets():
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", read(ROOT / "Makefile"), re.M))


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(rel(p)))
def test_every_make_target_mentioned_exists(doc):
    targets = makefile_targets()
    mentioned = {t for code in code_snippets(doc) for t in re.findall(r"(?:^|[\s;&|(])make\s+([A-Za-z][\w-]*)", code)}
    assert mentioned, f"{rel(doc)} mentions no make target"
    assert mentioned <= targets, f"{rel(doc)} mentions targets the Makefile lacks: {sorted(mentioned - targets)}"


def compose_published_ports():
    """service -> host ports compose.yaml publishes with .env.example's values (real Compose)."""
    from tests import compose_cli
    services = compose_cli.config(["compose.yaml"], compose_cli.ENV_EXAMPLE).model["services"]
    out = {}
    for name, svc in services.items():
        ports = set()
        for p in svc.get("ports", []):
            low, _, high = p["published"].partition("-")
            ports |= set(range(int(low), int(high or low) + 1))
        out[name] = ports
    return out


def scrape_ports():
    """job -> ports of its targets in prometheus/prometheus.yml (static and DNS service discovery)."""
    ports = {}
    for job in yaml.safe_load(read(ROOT / "prometheus" / "prometheus.yml"))["scrape_configs"]:
        found = {int(t.rsplit(":", 1)[1]) for sc in job.get("static_configs", []) for t in sc["targets"]}
        found |= {int(sd["port"]) for sd in job.get("dns_sd_configs", [])}
        ports[job["job_name"]] = found
    return ports


# URLs table row (by a word of its first cell) -> (compose service, Prometheus job scraping that port or None)
URL_ROWS = {
    "submitter": ("app", "app"),
    "flower": ("flower", "flower"),
    "prometheus": ("prometheus", "prometheus"),
    "alertmanager": ("alertmanager", "alertmanager"),
    "grafana": ("grafana", None),
    "rabbitmq": ("rabbitmq", None),
    "celery-exporter": ("celery_exporter", "celery_exporter"),
    "worker": (None, "celery_worker"),
}


def test_urls_table_ports_match_compose_and_prometheus():
    published, scraped = compose_published_ports(), scrape_ports()
    seen = set()
    for what, url, credentials in markdown_table(README, "what"):
        key = next((k for k in URL_ROWS if k in what.lower()), None)
        assert key, f"URLs table row {what!r}: which service is it?"
        seen.add(key)
        port = int(re.match(r"https?://localhost:(\d+)", url).group(1))
        service, job = URL_ROWS[key]
        if service:
            assert port in published[service], f"{what}: port {port}, compose publishes {published[service]}"
        if job:
            assert port in scraped[job], f"{what}: port {port}, Prometheus scrapes {job} on {scraped[job]}"
        assert credentials, f"{what}: say where its credentials come from (or none)"
    required = {"submitter", "flower", "prometheus", "alertmanager", "grafana", "rabbitmq"}
    assert required <= seen, f"the URLs table lacks {sorted(required - seen)}"


def test_localhost_urls_in_the_docs_use_the_stacks_ports():
    known = set().union(*compose_published_ports().values()) | scrape_ports()["celery_worker"] | EXAMPLE_PORTS
    for doc in ALL_DOCS:
        ports = {int(p) for p, _ in LOCAL_URL_RE.findall(read(doc))}
        assert ports <= known, f"{rel(doc)} uses ports no service has: {sorted(ports - known)}"


def flower_route_patterns():
    from flower.urls import handlers
    patterns = []
    for h in handlers:
        regex = h.regex.pattern if hasattr(h, "regex") else h[0]
        if regex not in (".*", r".*"):
            patterns.append(re.compile(regex.rstrip("$") + "$"))
    return patterns


def doc_urls(port):
    """(doc, path) of every http://localhost:<port>/... URL in the docs, placeholders filled in."""
    found = []
    for doc in ALL_DOCS:
        for p, path in LOCAL_URL_RE.findall(read(doc)):
            if int(p) == port:
                path = re.sub(r"<[^>]+>", "0f6f5cf4-7d2a-4b6e-9a51-3d1b9c2e8a10", path or "/").rstrip(".,:;")
                found.append((doc, path))
    return found


def test_flower_urls_in_the_docs_are_flower_routes():
    patterns = flower_route_patterns()
    urls = doc_urls(5555)
    assert urls
    bad = [(str(rel(d)), p) for d, p in urls if not any(rx.match(p.split("?")[0]) for rx in patterns)]
    assert not bad, f"not a route of Flower {__import__('flower').__version__}: {bad}"


def test_app_urls_in_the_docs_are_app_routes():
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    from app.main import create_app
    adapter = create_app().url_map.bind("localhost")
    bad = []
    for doc, path in doc_urls(8080):
        try:
            adapter.match(path.split("?")[0], method="GET")
        except MethodNotAllowed:
            pass  # POST-only routes (e.g. the alert webhook) exist too
        except NotFound:
            bad.append((str(rel(doc)), path))
    assert not bad, f"not a route of the app: {bad}"


def dashboard_panels():
    titles = {}
    for f in DASHBOARDS:
        d = json.loads(read(f))
        panels, stack = set(), list(d["panels"])
        while stack:
            p = stack.pop()
            panels.add(p.get("title"))
            stack.extend(p.get("panels", []))
        titles[d["title"]] = panels
    return titles


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(rel(p)))
def test_dashboards_and_panels_named_in_the_docs_exist(doc):
    panels = dashboard_panels()
    text = read(doc)
    for title in set(re.findall(r"(?:Celery|RabbitMQ) / [A-Z]\w+", text)):
        assert title in panels, f"{rel(doc)} names dashboard {title!r}; there are {sorted(panels)}"
    refs = re.findall(r"\*((?:Celery|RabbitMQ) / [A-Z]\w+) → ([^*]+)\*", text)
    for title, panel in refs:
        assert panel.strip() in panels[title], f"{rel(doc)}: {title} has no panel {panel.strip()!r}"
    if doc != README:
        assert len(refs) >= 15, f"{rel(doc)} should say where each production metric shows in Grafana"


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(rel(p)))
def test_alert_and_recording_rule_names_in_the_docs_exist(doc):
    text = read(doc)
    alerts, records = set(load_rules()), recorded_names()
    named = set(re.findall(r"\bCelery[A-Z][A-Za-z]+\b", text))
    assert named <= alerts, f"{rel(doc)} names alerts that do not exist: {sorted(named - alerts)}"
    recs = set(re.findall(r"\bcelery:[a-z_]+:[a-z0-9_]+\b", text))
    assert recs <= records, f"{rel(doc)} names recording rules that do not exist: {sorted(recs - records)}"


def test_the_guides_cover_the_five_signals_and_every_alert():
    alerts = set(load_rules()) - {"Watchdog"}
    for doc in (GUIDE_EN, GUIDE_RU):
        text = read(doc)
        missing = sorted(a for a in alerts if a not in text)
        assert not missing, f"{rel(doc)} does not say which signal {missing} guard"
        for word in ("Task Success Rate", "Task Runtime", "Queue Length", "Worker Load", "Tasks per Second"):
            assert word.lower() in text.lower(), f"{rel(doc)} lacks the signal {word!r}"


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


def test_every_make_loadtest_example_parses():
    from loadtest import cli
    examples = make_loadtest_examples()
    assert ("burst", "") in examples and ("burst", "--timeout 1") in examples
    for scenario, args in examples:
        try:
            cli.parse(([scenario] if scenario else []) + shlex.split(args))
        except SystemExit as exc:
            pytest.fail(f"make loadtest SCENARIO={scenario} ARGS={args!r} is refused (exit {exc.code})")


def test_make_recipes_are_what_the_live_tests_translate_the_examples_to():
    makefile = read(ROOT / "Makefile")
    assert "$(PY) -m loadtest $(SCENARIO) $(ARGS)" in makefile
    assert "$(PY) -m native up --workers $(WORKERS)" in makefile


def test_both_guides_show_the_same_commands():
    def commands(doc):
        return [shlex.join(t) for block in shell_blocks(doc) for t in block if t]
    assert commands(GUIDE_EN) == commands(GUIDE_RU)


def test_readme_states_the_exporter_scrape_timeout_and_grafana_version():
    text = read(README)
    job = next(j for j in yaml.safe_load(read(ROOT / "prometheus" / "prometheus.yml"))["scrape_configs"]
               if j["job_name"] == "celery_exporter")
    timeout = job.get("scrape_timeout") or yaml.safe_load(read(ROOT / "prometheus" / "prometheus.yml"))["global"]["scrape_timeout"]
    assert f"scrape_timeout: {timeout}" in text
    image = yaml.safe_load(read(ROOT / "compose.yaml"))["services"]["grafana"]["image"]
    assert image in text and "Grafana 11.x" in text
    schemas = {json.loads(read(f))["schemaVersion"] for f in DASHBOARDS}
    assert schemas == {39} and "`schemaVersion` 39" in text


# --- live --------------------------------------------------------------------------------------

def curl(argv, timeout=60):
    """Run a doc's curl command; returns (HTTP status, body)."""
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *argv[1:]], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{shlex.join(argv)}: curl exit {r.returncode}: {r.stderr}"
    body, _, code = r.stdout.rpartition("\n")
    return int(code), body


def flower_state(task_id):
    """The task's state in Flower, or None while Flower does not know it (404, plain text)."""
    from tests.live import FLOWER
    r = requests.get(f"{FLOWER}/api/task/info/{task_id}", timeout=10)
    return r.json().get("state") if r.status_code == 200 else None


def is_revoke(argv):
    return any("/api/task/revoke/" in t for t in argv)


class DocRunner:
    """Runs the curl commands of one document in order, as a reader would, filling in <task-id>."""

    def __init__(self, finished_task):
        from tests import live
        self.live = live
        self.finished_task = finished_task
        self.current = None   # ids of the latest submission in this document
        self.block_ids = []   # ids submitted in the block being run

    def task_id_for(self, argv, submitted_in_block):
        live = self.live
        url = next(t for t in argv if "<task-id>" in t)
        if is_revoke(argv):
            # The task the block just submitted, else a long one of our own.
            if submitted_in_block:
                task_id = submitted_in_block[0]
            else:
                [task_id] = live.submit(task="process_task", count=1, timeout=60)
                self.block_ids.append(task_id)
            if "terminate=true" in url:  # the docs revoke a running task
                live.wait_for(lambda: live.task_state(task_id)["state"] == "STARTED", 180,
                              message=f"task {task_id} to start")
            return task_id
        task_id = self.current[0] if self.current else self.finished_task
        live.wait_finished([task_id], 180)
        if ":5555/" in url:  # Flower's view of a task: wait until Flower has seen it finish
            live.wait_for(lambda: flower_state(task_id) in ("SUCCESS", "FAILURE", "REVOKED"), 60,
                          message=f"Flower to know task {task_id}")
        return task_id

    def run_block(self, block):
        live = self.live
        self.block_ids = []
        submitted_in_block = []
        ran = []
        for argv in block:
            if not argv or argv[0] != "curl" or "-u" in argv:
                continue  # not a curl call, or one that needs the production profile's credentials
            task_id = None
            if any("<task-id>" in t for t in argv):
                task_id = self.task_id_for(argv, submitted_in_block)
                argv = [t.replace("<task-id>", task_id) for t in argv]
            command = shlex.join(argv)
            assert not re.search(r"<[A-Za-z_-]+>", command), f"a placeholder the test cannot fill: {command}"
            status, body = curl(argv)
            assert 200 <= status < 300, f"{command}: HTTP {status}: {body[:300]}"
            data = json.loads(body)  # every API the docs call answers JSON
            ran.append(command)
            ids = []
            if "POST" in argv and any(t.endswith(":8080/api/tasks") for t in argv):
                ids = data["task_ids"]
            elif any("/api/task/async-apply/" in t for t in argv):
                ids = [data["task-id"]]
            if ids:
                submitted_in_block[:] = ids
                self.current = ids
                self.block_ids.extend(ids)
            if is_revoke(argv):
                live.wait_for(lambda: live.task_state(task_id)["state"] == "REVOKED", 60,
                              message=f"{task_id} to be REVOKED after {command}")
        if self.block_ids:  # leave no backlog for the next block
            live.wait_finished(self.block_ids, 300)
        return ran


@pytest.fixture(scope="module")
def finished_task(stack):
    from tests import live
    [task_id] = live.submit(task="process_task", count=1, timeout=0.2)
    live.wait_finished([task_id], 60)
    live.wait_for(lambda: flower_state(task_id) == "SUCCESS", 60, message="Flower to know the task")
    return task_id


@pytest.mark.stack
def test_the_docs_curl_examples_work_as_written(finished_task):
    done = set()
    ran = []
    for doc in USER_DOCS:
        runner = DocRunner(finished_task)
        for block in shell_blocks(doc):
            key = tuple(shlex.join(t) for t in block if t)
            if key in done:
                continue  # the same block in the other guide
            done.add(key)
            ran += runner.run_block(block)
    assert any("/api/workers" in c for c in ran) and any("/api/tasks" in c for c in ran)
    assert any("/api/task/info/" in c for c in ran) and any("/api/task/revoke/" in c for c in ran)


@pytest.mark.stack
def test_every_plain_url_in_the_docs_answers(stack):
    """GET every URL without a placeholder; Grafana (compose only) and the compose-only Prometheus
    UI paths (/alerts, /targets: Debian's 2.42 has only /classic/...) are left out."""
    checked, bad = set(), []
    for doc in ALL_DOCS:
        for port, path in LOCAL_URL_RE.findall(read(doc)):
            path = (path or "/").rstrip(".,:;")
            port = int(port)
            if "<" in path or port in EXAMPLE_PORTS or port == 3000 or (port, path) in checked:
                continue
            if port == 9090 and not (path == "/" or path.startswith(("/classic/", "/api/", "/-/"))):
                continue  # /alerts, /targets: the React UI of compose's Prometheus, not Debian's
            checked.add((port, path))
            r = requests.get(f"http://127.0.0.1:{port}{path}", timeout=30)
            if r.status_code not in (200, 405):  # 405: a POST-only API the docs call with curl -X POST
                bad.append((str(rel(doc)), f"http://localhost:{port}{path}", r.status_code))
    assert checked and not bad, bad


@pytest.mark.stack
@pytest.mark.parametrize("scenario, args", sorted(e for e in make_loadtest_examples() if e[0] == "burst"))
def test_the_make_loadtest_burst_examples_run(stack, scenario, args, tmp_path):
    """`make loadtest SCENARIO=burst ARGS=...` runs `$(PY) -m loadtest $(SCENARIO) $(ARGS)`."""
    from loadtest import cli
    argv = [scenario, *shlex.split(args)]
    _, plan = cli.parse(argv)
    out = tmp_path / "summary.json"
    r = subprocess.run([sys.executable, "-m", "loadtest", *argv, "--json", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=plan.wait_timeout + 300)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(out.read_text())
    assert (summary["submitted"], summary["succeeded"], summary["lost"]) == (plan.count, plan.count, 0)


def scale_examples():
    found = set()
    for doc in USER_DOCS:
        for block in shell_blocks(doc):
            for argv in block:
                if argv[-2:] == ["make", "up"] and argv[0].startswith("WORKERS="):
                    found.add(int(argv[0].split("=", 1)[1]))
    return found


@pytest.mark.stack
def test_the_scale_command_in_native_form(stack):
    """`WORKERS=N make up` runs `python -m native up --workers N`: scale up to N+1, down to the docs'
    N, then back to the session's worker count; Flower and Prometheus follow each time."""
    from tests.live import STACK_WORKERS, native_cli, prom_scalar, wait_for
    examples = scale_examples()
    assert len(examples) == 1, f"the docs should show one `WORKERS=N make up`, they show N in {examples}"
    [n] = examples

    def online():
        workers = requests.get("http://127.0.0.1:5555/api/workers?status=true", timeout=10).json()
        return {name.split("@")[0] for name, alive in workers.items() if alive and name.startswith("celery_worker-")}

    def scale(count):
        r = native_cli("up", "--workers", str(count))
        assert r.returncode == 0, r.stdout + r.stderr
        want = {f"celery_worker-{i}" for i in range(1, count + 1)}
        wait_for(lambda: online() == want, 120, message=f"Flower to see exactly {sorted(want)} online")
        wait_for(lambda: prom_scalar('count(up{job="celery_worker"} == 1)') == count, 120,
                 message=f"Prometheus to scrape {count} workers")

    try:
        scale(n + 1)
        scale(n)
    finally:
        if n != STACK_WORKERS:
            scale(STACK_WORKERS)
