"""Section 5 (opt-in, --cold-start): cold start of the native stack until every target is healthy.

Times `python -m native up` from a stopped stack (it returns once every service answers its health
check), then until Prometheus reports every scrape target up, and stops the stack again. It needs the
stack's own ports, so it runs only when no native service is running and those ports are free.
"""

import re
import subprocess
import sys
import time

import requests

from native import broker, derive, paths, process
from native.ports import PORTS as NATIVE

PORTS = (
    *(NATIVE[name] for name in ("flower", "app", "prometheus", "alertmanager", "celery_exporter")),
    derive.worker_port(1),
)
SKIPPED = "skipped (needs the stack ports free)"


def stack_free():
    return not process.owned() and not any(broker.listening("127.0.0.1", p) for p in PORTS)


def _targets_up():
    try:
        active = requests.get(f"http://127.0.0.1:{NATIVE['prometheus']}/api/v1/targets", timeout=2).json()["data"][
            "activeTargets"
        ]
        return bool(active) and all(t["health"] == "up" for t in active)
    except (requests.RequestException, ValueError, KeyError):
        return False


def run(enabled, say, env, timeout=180):
    if not enabled:
        return {"skipped": "not requested (--cold-start)"}
    if not stack_free():
        say(f"cold start: {SKIPPED}")
        return {"skipped": SKIPPED}
    say("cold start: python -m native up --workers 1 (then native down)")
    native = [sys.executable, "-m", "native"]
    t0 = time.monotonic()
    try:
        up = subprocess.run(
            [*native, "up", "--workers", "1"], cwd=paths.REPO, capture_output=True, text=True, timeout=timeout, env=env
        )
        services_s = time.monotonic() - t0
        if up.returncode != 0:
            return {"error": f"native up exited {up.returncode}: {up.stdout.strip().splitlines()[-1:]}"}
        while not _targets_up():
            if time.monotonic() - t0 > timeout:
                return {"services_healthy_s": services_s, "error": "not every Prometheus target up"}
            time.sleep(0.5)
        targets_s = time.monotonic() - t0
        reported = re.search(r"stack ready in ([\d.]+)s", up.stdout)
        say(f"  services healthy {services_s:.1f}s, every Prometheus target up {targets_s:.1f}s")
        return {
            "services_healthy_s": services_s,
            "all_targets_up_s": targets_s,
            "native_reported_s": float(reported.group(1)) if reported else None,
        }
    finally:
        subprocess.run([*native, "down"], cwd=paths.REPO, capture_output=True, timeout=180, env=env)
