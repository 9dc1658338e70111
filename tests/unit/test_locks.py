"""The shared-servers lock across processes: an exclusive holder waits for the shared holders of
other processes to finish, and holds back new ones until it is done."""

import subprocess
import sys
import time

from native import paths

HOLD = """
import sys, time
from pathlib import Path
from tests.locks import shared_servers
exclusive, seconds, directory = sys.argv[1] == "x", float(sys.argv[2]), Path(sys.argv[3])
print("waiting", flush=True)
with shared_servers(exclusive, directory):
    print("in", time.monotonic(), flush=True)
    time.sleep(seconds)
    print("out", time.monotonic(), flush=True)
"""


def hold(mode, seconds, directory):
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, mode, str(seconds), str(directory)],
        cwd=paths.REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def times(proc):
    out = dict(line.split() for line in proc.communicate(timeout=30)[0].splitlines() if line != "waiting")
    return float(out["in"]), float(out["out"])


def test_exclusive_waits_for_shared_holders_and_holds_back_new_ones(tmp_path):
    first = hold("s", 1.5, tmp_path)
    time.sleep(0.5)  # the first holds the lock shared
    exclusive = hold("x", 1.0, tmp_path)
    time.sleep(0.5)  # the exclusive one waits at the lock, holding the turnstile
    late = hold("s", 0.1, tmp_path)
    _, first_out = times(first)
    ex_in, ex_out = times(exclusive)
    late_in, _ = times(late)
    assert ex_in >= first_out  # waited for the shared holder
    assert late_in >= ex_out  # a shared holder that came later waited for the exclusive one


def test_shared_holders_overlap(tmp_path):
    a, b = hold("s", 1.0, tmp_path), hold("s", 1.0, tmp_path)
    (a_in, a_out), (b_in, b_out) = times(a), times(b)
    assert a_in < b_out and b_in < a_out


def test_no_test_starts_before_every_process_collected_and_ran_its_exclusive_tests(tmp_path, monkeypatch):
    from tests import locks

    monkeypatch.setattr(locks, "EXCLUSIVE_FIRST", tmp_path / "gate")
    locks.expect_processes(["stack", "other"])
    # A process still collecting holds the others back...
    assert locks.wait_for_exclusive_tests(timeout=0.3, interval=0.1) is False
    locks.collected(False, "other")
    assert locks.wait_for_exclusive_tests(timeout=0.3, interval=0.1) is False
    # ...and one with exclusive tests, while it lives and has not run them.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "gate" / "collecting-stack").unlink()
        (tmp_path / "gate" / str(other.pid)).touch()
        assert locks.wait_for_exclusive_tests(timeout=0.3, interval=0.1) is False
    finally:
        other.kill()
        other.wait()
    # A process that is gone holds nothing back, nor do this process's own exclusive tests.
    locks.collected(True)
    assert locks.wait_for_exclusive_tests(timeout=0.3, interval=0.1) is True
    assert not (tmp_path / "gate" / str(other.pid)).exists()
    locks.exclusive_done()
    assert list((tmp_path / "gate").iterdir()) == []
