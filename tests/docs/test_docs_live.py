"""The docs' examples, run on the session's native stack: the command examples of the README and
docs/, taken from their ```bash blocks — the curl calls to the app and to Flower's API (with
<task-id> filled in: the task the docs just submitted, a running one for a revoke), the
`make loadtest SCENARIO=burst ...` examples —, the runbooks' read-only curl calls (their changes to
workers and queues are checked statically: test_docs_static.py), and every plain URL they show.

The docs give the default stack's addresses; on a second stack (NATIVE_INSTANCE with
NATIVE_PORT_OFFSET) each is moved to that stack's port."""

import json
import re
import shlex
import subprocess
import sys

import pytest
import requests

from loadtest import cli
from native.ports import BASE_PORTS, PORTS
from tests import live
from worker.celery_app import app as celery_app
from tests.docs.markdown import (
    ALL_DOCS,
    EXAMPLE_PORTS,
    LOCAL_URL_RE,
    ROOT,
    RUNBOOKS,
    make_loadtest_examples,
    program,
    read,
    rel,
    shell_blocks,
    simple_commands,
)

pytestmark = pytest.mark.stack
# Documents whose curl examples run as written, in order (the runbooks' only read).
EXAMPLE_DOCS = [d for d in ALL_DOCS if d not in RUNBOOKS]


def live_port(port):
    """The port of this session's stack for a port the docs give (the default stack's)."""
    for name, base in BASE_PORTS.items():
        if base == port:
            return PORTS[name]
    first = BASE_PORTS["worker_metrics"]
    if first <= port < first + 16:
        return PORTS["worker_metrics"] + port - first
    return port


def live_argv(argv):
    return [
        LOCAL_URL_RE.sub(lambda m: f"http://127.0.0.1:{live_port(int(m.group(1)))}{m.group(2) or ''}", t) for t in argv
    ]


def curl(argv, timeout=60):
    """Run a doc's curl command; returns (HTTP status, body)."""
    r = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *live_argv(argv)[1:]], capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, f"{shlex.join(argv)}: curl exit {r.returncode}: {r.stderr}"
    body, _, code = r.stdout.rpartition("\n")
    return int(code), body


def flower_state(task_id):
    """The task's state in Flower, or None while Flower does not know it (404, plain text)."""
    r = requests.get(f"{live.FLOWER}/api/task/info/{task_id}", timeout=10)
    return r.json().get("state") if r.status_code == 200 else None


def is_revoke(argv):
    return any("/api/task/revoke/" in t for t in argv)


class DocRunner:
    """Runs the curl commands of one document in order, as a reader would, filling in <task-id>."""

    def __init__(self, finished_task):
        self.finished_task = finished_task
        self.current = None  # ids of the latest submission in this document
        self.block_ids = []  # ids submitted in the block being run

    def task_id_for(self, argv, submitted_in_block):
        url = next(t for t in argv if "<task-id>" in t)
        if is_revoke(argv):
            # The task the block just submitted, else a long one of our own.
            if submitted_in_block:
                task_id = submitted_in_block[0]
            else:
                [task_id] = live.submit(task="process_task", count=1, timeout=60)
                self.block_ids.append(task_id)
            if "terminate=true" in url:  # the docs revoke a running task
                live.wait_for(
                    lambda: live.task_state(task_id)["state"] == "STARTED", 180, message=f"task {task_id} to start"
                )
            return task_id
        task_id = self.current[0] if self.current else self.finished_task
        live.wait_finished([task_id], 180)
        if ":5555/" in url:  # Flower's view of a task: wait until Flower has seen it finish
            live.wait_for(
                lambda: flower_state(task_id) in ("SUCCESS", "FAILURE", "REVOKED"),
                60,
                message=f"Flower to know task {task_id}",
            )
        return task_id

    def run_block(self, block):
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
                live.wait_for(
                    lambda: live.task_state(task_id)["state"] == "REVOKED",
                    60,
                    message=f"{task_id} to be REVOKED after {command}",
                )
        if self.block_ids:  # leave no backlog for the next block
            # The calls were checked above; what is still queued is revoked, not waited out (the guide's
            # 20 tasks of 10 s are four rounds on six pool processes). Running tasks finish.
            celery_app.control.revoke(self.block_ids)
            live.wait_finished(self.block_ids, 300)
        return ran


@pytest.fixture(scope="module")
def finished_task(stack):
    [task_id] = live.submit(task="process_task", count=1, timeout=0.2)
    live.wait_finished([task_id], 60)
    live.wait_for(lambda: flower_state(task_id) == "SUCCESS", 60, message="Flower to know the task")
    return task_id


def test_the_docs_curl_examples_work_as_written(finished_task):
    done = set()
    ran = []
    for doc in EXAMPLE_DOCS:
        runner = DocRunner(finished_task)
        for block in shell_blocks(doc):
            key = tuple(shlex.join(t) for t in block if t)
            if key in done:
                continue  # the same block in the other guide
            done.add(key)
            ran += runner.run_block(block)
    assert any("/api/workers" in c for c in ran) and any("/api/tasks" in c for c in ran)
    assert any("/api/task/info/" in c for c in ran) and any("/api/task/revoke/" in c for c in ran)


def test_every_plain_url_in_the_docs_answers(stack):
    """GET every URL without a placeholder; Grafana (compose only) and the compose-only Prometheus
    UI paths (/alerts, /targets: Debian's 2.42 has only /classic/...) are left out, and RabbitMQ's
    on a Redis-broker stack."""
    from native import env as native_env

    skipped = {3000}
    if native_env.build()["BROKER"] == "redis":
        skipped |= {BASE_PORTS["rabbitmq_management"], BASE_PORTS["rabbitmq_prometheus"]}
    checked, bad = set(), []
    for doc in ALL_DOCS:
        for port, path in LOCAL_URL_RE.findall(read(doc)):
            path = (path or "/").rstrip(".,:;")
            port = int(port)
            if "<" in path or port in EXAMPLE_PORTS or port in skipped or (port, path) in checked:
                continue
            if port == 9090 and not (path == "/" or path.startswith(("/classic/", "/api/", "/-/"))):
                continue  # /alerts, /targets: the React UI of compose's Prometheus, not Debian's
            checked.add((port, path))
            r = requests.get(f"http://127.0.0.1:{live_port(port)}{path}", timeout=30)
            if r.status_code not in (200, 405):  # 405: a POST-only API the docs call with curl -X POST
                bad.append((str(rel(doc)), f"http://localhost:{port}{path}", r.status_code))
    assert checked and not bad, bad


def runbook_reads():
    """[(runbook, argv)] of the runbooks' curl calls that only read (no -X, no body, no credentials)."""
    found = []
    for doc in RUNBOOKS:
        for argv, _ in simple_commands(doc):
            _, words = program(argv)
            if words[:1] == ["curl"] and not {"-X", "-d", "-u"} & set(words):
                found.append((doc, words))
    return found


def test_the_runbooks_read_only_curl_calls_answer(finished_task):
    workers = sorted(requests.get(f"{live.FLOWER}/api/workers", timeout=30).json())
    assert workers, "no worker in Flower"
    fill = {"<task-id>": finished_task, "<worker>": workers[0], "<name>": "process_task", "<task>": "process_task"}
    fill["<queue>"] = "celery"
    calls, bad = runbook_reads(), []
    assert len(calls) >= 15, calls
    for doc, argv in calls:
        for placeholder, value in fill.items():
            argv = [t.replace(placeholder, value) for t in argv]
        command = shlex.join(argv)
        assert not re.search(r"<[A-Za-z_-]+>", command), f"{rel(doc)}: a placeholder the test cannot fill: {command}"
        status, body = curl(argv)
        if not 200 <= status < 300:
            bad.append(f"{rel(doc)}: {command}: HTTP {status}: {body[:200]}")
        elif "/api/" in command:
            json.loads(body)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("scenario, args", sorted(e for e in make_loadtest_examples() if e[0] == "burst"))
def test_the_make_loadtest_burst_examples_run(stack, scenario, args, tmp_path):
    """`make loadtest SCENARIO=burst ARGS=...` runs `$(PY) -m loadtest $(SCENARIO) $(ARGS)`."""
    argv = [scenario, *shlex.split(args)]
    _, plan = cli.parse(argv)
    out = tmp_path / "summary.json"
    r = subprocess.run(
        [sys.executable, "-m", "loadtest", *argv, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=plan.wait_timeout + 300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(out.read_text())
    assert (summary["submitted"], summary["succeeded"], summary["lost"]) == (plan.count, plan.count, 0)
