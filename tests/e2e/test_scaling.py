"""`WORKERS=N make up` as the docs show it, in native form: the stack scales up and down, and Flower
and Prometheus follow."""

import pytest
import requests

from tests.docs.markdown import scale_examples
from tests.live import FLOWER, STACK_WORKERS, native_cli, prom_scalar, wait_for

pytestmark = pytest.mark.stack


def test_the_scale_command_in_native_form(stack):
    """`WORKERS=N make up` runs `python -m native up --workers N`: scale up to N+1, down to the docs'
    N, then back to the session's worker count; Flower and Prometheus follow each time."""
    examples = scale_examples()
    assert len(examples) == 1, f"the docs should show one `WORKERS=N make up`, they show N in {examples}"
    [n] = examples

    def online():
        workers = requests.get(f"{FLOWER}/api/workers?status=true", timeout=10).json()
        return {name.split("@")[0] for name, alive in workers.items() if alive and name.startswith("celery_worker-")}

    def scale(count):
        r = native_cli("up", "--workers", str(count))
        assert r.returncode == 0, r.stdout + r.stderr
        want = {f"celery_worker-{i}" for i in range(1, count + 1)}
        wait_for(lambda: online() == want, 120, message=f"Flower to see exactly {sorted(want)} online")
        wait_for(
            lambda: prom_scalar('count(up{job="celery_worker"} == 1)') == count,
            120,
            message=f"Prometheus to scrape {count} workers",
        )

    try:
        scale(n + 1)
        scale(n)
    finally:
        if n != STACK_WORKERS:
            scale(STACK_WORKERS)
