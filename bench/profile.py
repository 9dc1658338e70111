"""Section: where each component's CPU goes under trivial load, sampled by py-spy.

The full bundle runs; py-spy (`py-spy record --format raw`, collapsed stacks that speedscope and
flamegraph.pl open) records the worker's main process, Flower, the exporter and the publisher while
N trivial tasks stream through and the monitors catch up. Only the thread holding the GIL is sampled
(`--gil`: a thread waiting in epoll or on a lock holds none), so samples / rate is about the Python
CPU time of each process; divided by N it is ms per task, next to the CPU psutil measured for the
same process (which also holds what C code does without the GIL). Per component: the functions with
the most own time (the frame on top of the stack) and total time (anywhere in the stack), the latter
without pass-through frames (thread bootstrap, command-line plumbing: ≥ 90 % of their time in one
callee), which would only repeat the function below them.
"""

import collections
import os
import re
import signal
import time
from pathlib import Path

from bench import measure
from bench.configs import CONFIGS
from bench.probes import cpu_seconds, wait_until
from bench.publisher import Publisher
from bench.state import RUN, BenchError
from native import paths, process

PYSPY = paths.VENV_BIN / "py-spy"
RATE = 100  # samples per second (py-spy's default)
TOP = 8
# A frame that hands this share of its time to one callee only passes it through.
PASS_THROUGH = 0.9
COMPONENTS = ("worker", "flower", "exporter", "publisher")


def run(bench, n, directory, say):
    if not PYSPY.exists():
        raise BenchError(f"{PYSPY} is missing: `make venv` installs the pinned py-spy (pyproject.toml [test])")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    say(f"profile: the full bundle, {n} trivial tasks, py-spy at {RATE} Hz into {directory}")
    bench.up(CONFIGS["full"])
    try:
        pub = Publisher(bench, "--kind", "add", "--count", n, "--wait-go")
        pids = {name: bench.pid(name) for name in ("worker", "flower", "exporter")}
        pids["publisher"] = pub.proc.pid
        outputs = {name: directory / f"{name}.txt" for name in pids}
        for name, pid in pids.items():
            outputs[name].unlink(missing_ok=True)
            record(bench, name, pid, outputs[name])
        time.sleep(2)  # py-spy attaches
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        pub.go()
        t_done = measure.wait_count(bench.counter, n, timeout=max(120.0, n / 20))
        published = pub.result(60)
        measure.catch_up(bench, n, t_done)
        cpu = {name: (cpu_seconds(pid) or 0) - (before[name] or 0) for name, pid in pids.items() if name != "publisher"}
        cpu["publisher"] = published["cpu"]
        for name in pids:
            finish(name)
    finally:
        bench.down()
    return {
        "tasks": n,
        "rate_hz": RATE,
        "directory": str(directory),
        "components": {name: summarize(outputs[name], n, cpu[name]) for name in pids},
    }


def record(bench, name, pid, output):
    bench.start(
        f"py-spy-{name}",
        [PYSPY, "record", "--pid", pid, "--rate", RATE, "--gil", "--format", "raw", "--nolineno", "--output", output],
        bench.env,
    )


def finish(name):
    """Stop py-spy with SIGINT, which makes it write its file (it stops by itself when its process ends)."""
    pid = process.running_pid(f"py-spy-{name}", RUN)
    if pid:
        os.kill(pid, signal.SIGINT)
        try:
            wait_until(lambda: not process.alive(pid), 30, f"py-spy of {name} to write its profile")
        except BenchError:
            pass
    process.stop(f"py-spy-{name}", run=RUN)


def parse(text):
    """Collapsed stacks ("frame;frame;... count" per line) -> (samples, own, total, callees) by frame;
    callees[frame] counts the samples each callee of frame got (None: frame's own)."""
    own, total = collections.Counter(), collections.Counter()
    callees = collections.defaultdict(collections.Counter)
    samples = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, n = [short(f) for f in stack.split(";")], int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
        for caller, callee in zip(frames, [*frames[1:], None], strict=True):
            callees[caller][callee] += n
    return samples, own, total, callees


def passes_through(callees):
    """True if one callee (not the frame's own code) got PASS_THROUGH of the frame's samples."""
    if not callees:
        return False
    (top, count), *_ = callees.most_common(1)
    return top is not None and count >= PASS_THROUGH * sum(callees.values())


def short(frame):
    """`handle (/.../site-packages/celery/events/state.py)` -> `handle (celery/events/state.py)`."""
    return re.sub(
        r"\((?:.*/(?:site-packages|dist-packages|python3\.\d+)/|" + re.escape(str(paths.REPO)) + "/)", "(", frame
    )


def summarize(path, n, cpu_s):
    try:
        samples, own, total, callees = parse(Path(path).read_text())
    except FileNotFoundError:
        return {"error": f"py-spy wrote no profile ({path})"}
    per_task = lambda count: count / RATE / n * 1000  # noqa: E731  ms per task
    return {
        "file": str(path),
        "samples": samples,
        "sampled_ms_per_task": per_task(samples),
        "cpu_ms_per_task": cpu_s * 1000 / n,
        "top_own": [[f, per_task(c)] for f, c in own.most_common(TOP)],
        "top_total": [[f, per_task(c)] for f, c in total.most_common() if not passes_through(callees[f])][:TOP],
    }
