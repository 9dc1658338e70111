"""Start, find and stop the processes native mode owns, through pid files in .native/run/."""
import os
import signal
import subprocess
import time

from native import paths


def pidfile(name):
    return paths.RUN / f"{name}.pid"


def logfile(name):
    return paths.LOGS / f"{name}.log"


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


def running_pid(name):
    """The pid of our running process `name`, or None (stale pid files are removed)."""
    path = pidfile(name)
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


def start(name, argv, env, cwd=None):
    """Start argv detached in its own process group, logging to .native/logs/<name>.log."""
    paths.ensure()
    log = open(logfile(name), "ab")
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(map(str, argv))}\n".encode())
    log.flush()
    proc = subprocess.Popen([str(a) for a in argv], env=env, cwd=cwd or paths.REPO, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    pidfile(name).write_text(str(proc.pid))
    return proc.pid


def stop(name, timeout=15.0):
    """SIGTERM the process group, SIGKILL what is left after `timeout`. True if something was stopped."""
    pid = running_pid(name)
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
    pidfile(name).unlink(missing_ok=True)
    return True
