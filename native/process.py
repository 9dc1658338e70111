"""Start, find and stop the processes native mode owns, through pid files in .native/run/.

run/logs: other directories for another owner of processes (the bench keeps its own under .native/bench/)."""

import os
import signal
import subprocess
import time

from native import paths


def pidfile(name, run=None):
    return (run or paths.RUN) / f"{name}.pid"


def logfile(name, logs=None):
    return (logs or paths.LOGS) / f"{name}.log"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def running_pid(name, run=None):
    """The pid of our running process `name`, or None (stale pid files are removed)."""
    path = pidfile(name, run)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if alive(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def owned():
    return sorted(p.stem for p in paths.RUN.glob("*.pid") if running_pid(p.stem))


def start(name, argv, env, cwd=None, run=None, logs=None):
    """Start argv detached in its own process group, logging to .native/logs/<name>.log."""
    paths.ensure()
    log = open(logfile(name, logs), "ab")
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(map(str, argv))}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        [str(a) for a in argv],
        env=env,
        cwd=cwd or paths.REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    pidfile(name, run).write_text(str(proc.pid))
    return proc.pid


def stop(name, timeout=15.0, run=None):
    """SIGTERM the process group, SIGKILL what is left after `timeout`. True if something was stopped."""
    pid = running_pid(name, run)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # the leader and any pool child left behind
    except ProcessLookupError:
        pass
    pidfile(name, run).unlink(missing_ok=True)
    return True
