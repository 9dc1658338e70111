"""The docs cannot drift from the code, checked without a running stack: relative links resolve and
the docs index links every page; every command in the README, docs/ (runbooks included) and the
chart's README is checked (make targets exist and dry-run, loadtest lines resolve to a plan, task
bodies pass the app's validation, compose files and python modules and options exist); the URLs
table's ports are the ones compose.yaml publishes and prometheus.yml scrapes; Flower and app URLs in
the docs are real routes; dashboard, panel, metric, alert and recording-rule names exist; both guides
show the same commands."""

import importlib.util
import itertools
import json
import os
import re
import shlex
import subprocess

import pytest
import yaml

from native.ports import PORTS
from tests.docs.markdown import (
    ALL_DOCS,
    CHART_README,
    COMMAND_DOCS,
    DASHBOARDS,
    EXAMPLE_PORTS,
    GUIDE_EN,
    GUIDE_RU,
    INLINE_CODE_RE,
    LINK_RE,
    LOCAL_URL_RE,
    README,
    ROOT,
    USER_DOCS,
    code_snippets,
    load_rules,
    make_loadtest_examples,
    markdown_table,
    program,
    prose,
    read,
    recorded_names,
    rel,
    shell_blocks,
    simple_commands,
)

README_MAX_LINES = 250


@pytest.mark.parametrize("doc", COMMAND_DOCS, ids=lambda p: str(rel(p)))
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


@pytest.mark.parametrize("doc", COMMAND_DOCS, ids=lambda p: str(rel(p)))
def test_every_make_target_mentioned_exists(doc):
    targets = makefile_targets()
    mentioned = {t for code in code_snippets(doc) for t in re.findall(r"(?:^|[\s;&|(])make\s+([A-Za-z][\w-]*)", code)}
    if doc in USER_DOCS:
        assert mentioned, f"{rel(doc)} mentions no make target"
    assert mentioned <= targets, f"{rel(doc)} mentions targets the Makefile lacks: {sorted(mentioned - targets)}"


def test_the_readme_is_short_and_the_docs_index_links_every_page():
    lines = read(README).count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"
    assert "docs/README.md" in read(README), "the README links the docs index"
    index = ROOT / "docs" / "README.md"
    linked = {target.split("#")[0] for target in LINK_RE.findall(read(index))}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    missing = sorted(pages - linked)
    assert not missing, f"docs/README.md does not link {missing}"
    assert "runbooks/" in linked and "../charts/celery-observability/README.md" in linked


# --- every command in the docs -------------------------------------------------------------------

# Programs the docs may show, and what is checked of them (below); anything else fails.
OTHER_PROGRAMS = {"celery", "kill", "grep", "top", "sudo", "redis-cli", "cd", "kind", "promtool", "amtool"}
COMPOSE_SUBCOMMANDS = {"up", "down", "ps", "logs", "exec", "port", "config", "stop", "start", "restart", "version"}
# Values `make` settings accept (scripts/compose_stack.sh and native/ check the same).
MAKE_VALUES = {
    "MODE": {"auto", "docker", "native"},
    "PROFILE": {"dev", "production"},
    "BROKER": {"rabbitmq", "redis"},
    "WORKERS": {str(n) for n in range(1, 17)},
    "DRY_RUN": {"0", "1"},
}


def all_commands():
    """[(doc, argv, command)] of every simple command of the checked docs."""
    return [(doc, argv, command) for doc in COMMAND_DOCS for argv, command in simple_commands(doc)]


def alternatives(argv):
    """A synopsis's `a|b` words expanded: one argv per combination."""
    choices = [w.split("|") if re.fullmatch(r"[\w.-]+(\|[\w.-]+)+", w) else [w] for w in argv]
    return [list(c) for c in itertools.product(*choices)]


def known_settings():
    from mixin import settings_reference

    return set(settings_reference.collect())


def check_make(env, words, targets, settings):
    """Problems of one `make ...` command."""
    problems = []
    names = [w for w in words[1:] if "=" not in w]
    variables = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    if not names:
        return ["make without a target"]
    missing = set(names) - targets
    if missing:
        problems.append(f"no target {sorted(missing)}")
    for key, value in {**env, **variables}.items():
        if key not in settings and key not in ("SCENARIO", "ARGS"):
            problems.append(f"{key} is no setting (docs/configuration.md)")
        elif key in MAKE_VALUES and value not in MAKE_VALUES[key]:
            problems.append(f"{key}={value} is not one of {sorted(MAKE_VALUES[key])}")
    return problems


def make_dry_run(env, words):
    """`make -n` of the command, on the native path (the Docker path would run scripts)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    environ.update({k: v for k, v in env.items() if k not in ("MODE", "DRY_RUN")}, MODE="native")
    return subprocess.run(
        ["make", "-n", "--no-print-directory", *words[1:]],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def loadtest_problem(argv):
    from loadtest import cli

    try:
        cli.parse(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return f"loadtest refuses {shlex.join(argv)!r} (exit {exc.code})"
    return None


def curl_body(argv):
    for i, word in enumerate(argv):
        if word in ("-d", "--data", "--data-raw") and i + 1 < len(argv):
            return argv[i + 1]
    return None


def curl_problem(argv):
    urls = [w for w in argv if w.startswith("http")]
    if not urls:
        return "a curl without an http:// URL"
    body = curl_body(argv)
    if any(u.rstrip("/").endswith(":8080/api/tasks") for u in urls) and body is not None:
        from app.validation import ValidationError, parse_submission

        try:
            parse_submission(json.loads(body))
        except (ValueError, ValidationError) as exc:
            return f"the app refuses the body {body}: {getattr(exc, 'message', exc)}"
    elif body is not None and body.lstrip().startswith("{"):
        try:
            json.loads(body)
        except ValueError as exc:
            return f"the body is not JSON: {exc}"
    return None


def compose_files(argv):
    files = [argv[i + 1] for i, w in enumerate(argv) if w == "-f" and i + 1 < len(argv)]
    return files or ["compose.yaml"]


def python_problem(module, args):
    if module == "loadtest":
        return loadtest_problem(args)
    if module == "mixin":
        from mixin.__main__ import parser

        try:
            parser().parse_args(args)
        except SystemExit as exc:
            return f"python -m mixin refuses {args} (exit {exc.code})" if exc.code else None
        return None
    if module == "native":
        commands = set(re.findall(r'add_parser\("([\w-]+)"', read(ROOT / "native" / "__main__.py")))
        return None if args and args[0] in commands else f"python -m native has no command {args[:1]}"
    if module == "pytest":
        missing = [a for a in args if not a.startswith("-") and not (ROOT / a.split("::")[0]).exists()]
        return f"no such test path {missing}" if missing else None
    return None if importlib.util.find_spec(module) else f"no module {module}"


def existing_paths_problem(argv, flags):
    """Files named after one of `flags` (e.g. -f, -k, --config.file=) must exist in the repository."""
    missing = []
    for i, word in enumerate(argv):
        for flag in flags:
            value = None
            if flag.endswith("=") and word.startswith(flag):
                value = word[len(flag) :]
            elif word == flag and i + 1 < len(argv):
                value = argv[i + 1]
            if value and not value.startswith(("out/", "$", "-")) and "<" not in value and "://" not in value:
                if not (ROOT / value).exists():
                    missing.append(value)
    return f"no such file {missing}" if missing else None


def test_every_command_in_the_docs_checks_out():
    targets, settings = makefile_targets(), known_settings()
    problems, checked, dry_runs, compose_sets = [], 0, {}, set()
    for doc, argv, command in all_commands():
        env, words = program(argv)
        if any(v.startswith("$(") for v in env.values()) and (not words or not words[0].startswith(("make", "curl"))):
            continue  # PW=$(openssl rand ...): a variable for the commands that follow
        if not words:
            continue
        found = []
        name = words[0]
        if name == "make":
            found += check_make(env, words, targets, settings)
            key = tuple(sorted(env.items())) + tuple(words)
            dry_runs.setdefault(key, (doc, env, words))
            if len(words) > 1 and words[1] == "loadtest":
                variables = dict(w.split("=", 1) for w in words[2:] if "=" in w)
                scenario = [variables["SCENARIO"]] if variables.get("SCENARIO") else []
                found.append(loadtest_problem(scenario + shlex.split(variables.get("ARGS", ""))))
        elif name == "curl":
            found.append(curl_problem(words))
        elif name == "docker":
            if words[1:2] == ["compose"]:
                sub = next((w for w in words[2:] if not w.startswith("-") and not w.endswith(".yaml")), None)
                if sub not in COMPOSE_SUBCOMMANDS:
                    found.append(f"docker compose {sub}: not a subcommand the docs use")
                compose_sets.add(tuple(compose_files(words)))
            elif words[1:2] not in (["build"], ["info"]):
                found.append(f"docker {words[1:2]}: unexpected")
        elif re.fullmatch(r"(?:\.venv/bin/)?python3?", name) and words[1:2] == ["-m"]:
            for variant in alternatives(words[2:]):
                found.append(python_problem(variant[0], variant[1:]))
        elif name in ("kubectl", "helm"):
            found.append(existing_paths_problem(words, ("-f", "-k")))
            if name == "helm" and words[1:2] == ["install"] and len(words) > 3 and not (ROOT / words[3]).exists():
                found.append(f"no chart at {words[3]}")
        elif name in OTHER_PROGRAMS:
            found.append(existing_paths_problem(words, ("--config.file=",)))
        else:
            found.append(f"{name}: a program the doc tests do not know")
        checked += 1
        problems += [f"{rel(doc)}: {command!r}: {p}" for p in found if p]
    for doc, env, words in dry_runs.values():
        result = make_dry_run(env, words)
        if result.returncode != 0:
            problems.append(f"{rel(doc)}: make -n {' '.join(words[1:])} fails: {result.stderr.strip()[-300:]}")
    from tests import compose_cli

    for files in sorted(compose_sets):
        result = compose_cli.config(list(files), compose_cli.ENV_EXAMPLE)
        if result.returncode != 0:
            problems.append(f"docker compose -f {' -f '.join(files)}: {result.stderr.strip()[-300:]}")
    print(
        f"checked {checked} commands ({len(dry_runs)} distinct make lines dry-run, {len(compose_sets)} compose file sets)"
    )
    assert checked > 300, f"only {checked} commands found in the docs"
    assert not problems, "\n".join(problems)


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
    urls = doc_urls(PORTS["flower"])
    assert urls
    bad = [(str(rel(d)), p) for d, p in urls if not any(rx.match(p.split("?")[0]) for rx in patterns)]
    assert not bad, f"not a route of Flower {__import__('flower').__version__}: {bad}"


def test_app_urls_in_the_docs_are_app_routes():
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    from app.main import create_app

    adapter = create_app().url_map.bind("localhost")
    bad = []
    for doc, path in doc_urls(PORTS["app"]):
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


DASHBOARD_TITLE_RE = r"(?:Celery|RabbitMQ|Redis) / [A-Z]\w+"


@pytest.mark.parametrize("doc", COMMAND_DOCS, ids=lambda p: str(rel(p)))
def test_dashboards_and_panels_named_in_the_docs_exist(doc):
    panels = dashboard_panels()
    text = read(doc)
    for title in set(re.findall(DASHBOARD_TITLE_RE, text)):
        assert title in panels, f"{rel(doc)} names dashboard {title!r}; there are {sorted(panels)}"
    refs = re.findall(rf"\*({DASHBOARD_TITLE_RE}) → ([^*]+)\*", text)
    for title, panel in refs:
        assert panel.strip() in panels[title], f"{rel(doc)}: {title} has no panel {panel.strip()!r}"
    if doc in (GUIDE_EN, GUIDE_RU):
        assert len(refs) >= 15, f"{rel(doc)} should say where each production metric shows in Grafana"


NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def test_the_docs_count_and_list_every_dashboard_and_its_job_variables():
    boards = [json.loads(read(f)) for f in DASHBOARDS]
    word = NUMBER_WORDS[len(boards)]
    for doc in COMMAND_DOCS:
        for count, noun in re.findall(
            r"(?<!Grafana )\b(two|three|four|five|six|seven|eight|nine|\d+) (dashboards|JSON files)\b", read(doc)
        ):
            assert count in (word, str(len(boards))), f"{rel(doc)} says {count} {noun}; there are {word}"
    reference = read(ROOT / "docs" / "reference.md")
    rows = {r[0]: r[1] for r in markdown_table(ROOT / "docs" / "reference.md", "dashboard")}
    assert set(rows) == {b["title"] for b in boards}, "docs/reference.md lists other dashboards than there are"
    for b in boards:
        assert rows[b["title"]] == f"`/d/{b['uid']}`", f"{b['title']}: path {rows[b['title']]}, uid {b['uid']}"
    variables = {v["name"] for b in boards for v in b["templating"]["list"] if v["name"].startswith("job_")}
    missing = sorted(v for v in variables if f"`{v}`" not in reference)
    assert not missing, f"docs/reference.md does not list the dashboards' variables {missing}"
    assert f"{word} dashboards" in read(README) and f"{word} dashboards" in reference


def metric_names_defined(path):
    """The metric families a worker module defines (counters with `_total`, as Prometheus shows them)."""
    text = read(ROOT / path)
    names = set()
    pattern = r"(Counter|Gauge|Histogram|CounterMetricFamily|GaugeMetricFamily)\(\s*\"(celery_worker_\w+)\""
    for kind, name in re.findall(pattern, text):
        names.add(name + "_total" if kind.startswith("Counter") and not name.endswith("_total") else name)
    return names


def test_the_metrics_reference_names_every_metric_of_the_workers():
    reference = read(ROOT / "docs" / "reference.md")
    names = metric_names_defined("worker/metrics.py") | metric_names_defined("worker/latency.py")
    assert len(names) >= 12, names
    missing = sorted(n for n in names if f"`{n}`" not in reference)
    assert not missing, f"docs/reference.md does not name {missing}"


def test_the_kubernetes_steps_create_every_secret_they_need():
    """The demo's last command gives Alertmanager secrets it mounts: the steps before create them."""
    example = ROOT / "charts" / "celery-observability" / "examples" / "kube-prometheus-stack-alertmanager.yaml"
    values = yaml.safe_load(read(example))
    mounted = values["alertmanager"]["alertmanagerSpec"]["secrets"]
    text = yaml.safe_dump(values)
    commands = [argv for argv, _ in simple_commands(CHART_README)]
    for secret in mounted:
        keys = set(re.findall(rf"/etc/alertmanager/secrets/{secret}/(\w+)", text))
        created = [a for a in commands if a[:1] == ["kubectl"] and "secret" in a and secret in a]
        assert created, f"the chart's README never creates the Secret {secret} its Alertmanager values mount"
        literals = {w.split("=", 2)[1] for a in created for w in a if w.startswith("--from-literal=")}
        assert keys <= literals, f"Secret {secret}: keys {sorted(keys - literals)} are not created"
        namespace = created[0][created[0].index("-n") + 1]
        assert namespace == "monitoring", f"{secret} must be in the stack's namespace, not {namespace}"


@pytest.mark.parametrize("doc", COMMAND_DOCS, ids=lambda p: str(rel(p)))
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


def test_every_make_loadtest_example_parses():
    from loadtest import cli

    examples = make_loadtest_examples(COMMAND_DOCS)
    assert ("burst", "") in examples and ("burst", "--timeout 1") in examples
    for scenario, args in examples:
        try:
            cli.parse(([scenario] if scenario else []) + shlex.split(args))
        except SystemExit as exc:
            pytest.fail(f"make loadtest SCENARIO={scenario} ARGS={args!r} is refused (exit {exc.code})")


@pytest.mark.parametrize(
    "make_args, runs",
    [
        (["loadtest", "SCENARIO=burst", "ARGS=--timeout 1"], ["-m", "loadtest", "burst", "--timeout", "1"]),
        (["native-up", "WORKERS=2"], ["-m", "native", "up", "--workers", "2"]),  # what `make up` runs natively
    ],
    ids=["loadtest", "up"],
)
def test_make_runs_what_the_live_tests_run_for_the_examples(make_args, runs):
    # The live doc tests run the examples' Python commands directly; `make -n` shows what make runs.
    # --no-print-directory: under `make test` this make is a sub-make, which would add directory lines.
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", *make_args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    last = shlex.split(result.stdout.strip().splitlines()[-1])
    assert last[0].endswith("python") and last[1:] == runs, result.stdout


def test_both_guides_show_the_same_commands():
    def commands(doc):
        return [shlex.join(t) for block in shell_blocks(doc) for t in block if t]

    assert commands(GUIDE_EN) == commands(GUIDE_RU)


def test_the_docs_state_the_exporter_scrape_timeout_and_grafana_version():
    adoption, reference = read(ROOT / "docs" / "adoption.md"), read(ROOT / "docs" / "reference.md")
    config = yaml.safe_load(read(ROOT / "prometheus" / "prometheus.yml"))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "celery_exporter")
    timeout = job.get("scrape_timeout") or config["global"]["scrape_timeout"]
    assert f"scrape_timeout: {timeout}" in adoption
    image = yaml.safe_load(read(ROOT / "compose.yaml"))["services"]["grafana"]["image"]
    assert image in reference and "Grafana 11.x" in reference
    schemas = {json.loads(read(f))["schemaVersion"] for f in DASHBOARDS}
    assert schemas == {39} and "`schemaVersion` 39" in reference
