"""The orchestrator's side of `python -m bench.publish`: a child process spoken to in JSON lines."""

import json
import subprocess
import sys

from bench.state import LOGS, RUN, BenchError
from native import paths, process


class Publisher:
    """Started in its own process group; its pid file lets the Bench stop it like any service."""

    def __init__(self, bench, *args):
        with open(LOGS / "publisher.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.publish", *map(str, args)],
                cwd=paths.REPO,
                env=bench.run_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        process.pidfile("publisher", RUN).write_text(str(self.proc.pid))
        self.ready = self._line()

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"the publisher exited early (see {LOGS / 'publisher.log'})")
        return json.loads(line)

    def go(self):
        """Start publishing; returns the time of the first publish."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self._line()["t0"]

    def result(self, timeout=None):
        line = self._line()
        self.proc.wait(timeout)
        process.pidfile("publisher", RUN).unlink(missing_ok=True)
        return line

    def terminate(self):
        self.proc.terminate()  # it stops publishing and prints its summary
        return self.result(30)
