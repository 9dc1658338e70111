"""The docs cannot drift from the code, checked without a running stack: relative links resolve;
every `make <target>` the README and guides mention exists; the URLs table's ports are the ones
compose.yaml publishes and prometheus.yml scrapes; Flower and app URLs in the docs are real routes;
dashboard, panel, alert and recording-rule names exist; every `make loadtest` example parses; both
guides show the same commands."""

import json
import re
import shlex
import subprocess

import pytest
import yaml

from native.ports import PORTS
from tests.docs.markdown import (
    ALL_DOCS,
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
    prose,
    read,
    recorded_names,
    rel,
    shell_blocks,
)


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


def test_every_make_loadtest_example_parses():
    from loadtest import cli

    examples = make_loadtest_examples()
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


def test_readme_states_the_exporter_scrape_timeout_and_grafana_version():
    text = read(README)
    job = next(
        j
        for j in yaml.safe_load(read(ROOT / "prometheus" / "prometheus.yml"))["scrape_configs"]
        if j["job_name"] == "celery_exporter"
    )
    timeout = (
        job.get("scrape_timeout")
        or yaml.safe_load(read(ROOT / "prometheus" / "prometheus.yml"))["global"]["scrape_timeout"]
    )
    assert f"scrape_timeout: {timeout}" in text
    image = yaml.safe_load(read(ROOT / "compose.yaml"))["services"]["grafana"]["image"]
    assert image in text and "Grafana 11.x" in text
    schemas = {json.loads(read(f))["schemaVersion"] for f in DASHBOARDS}
    assert schemas == {39} and "`schemaVersion` 39" in text
