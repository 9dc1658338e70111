"""Every native worker is a worker of its own for celery-exporter too.

celery-exporter labels a worker by the part of its nodename after `@` (`hostname`). Native workers
share the machine, so each gets its own host part (celery_worker-<i>@<host>-<i>); otherwise the
exporter would show one worker where Flower shows three, and could not see one of them stop.
"""

import signal

import pytest

from tests import faults
from tests.live import EXPORTER_STACK_WORKERS, STACK_WORKERS, prom_query, wait_for

pytestmark = pytest.mark.stack

# The stack's workers only: probe workers and scaled-away ones stay at 0 until the exporter purges them.
UP = f'celery_worker_up{{job="celery_exporter", {EXPORTER_STACK_WORKERS}}}'


def up_by_host():
    return {r["metric"]["hostname"]: float(r["value"][1]) for r in prom_query(UP)}


def test_each_worker_has_its_own_exporter_series_and_one_stop_turns_one_to_zero(stack):
    wait_for(
        lambda: prom_query(f"count({UP} == 1) == {STACK_WORKERS}"),
        60,
        message=f"count({UP} == 1) to be {STACK_WORKERS}",
    )
    hosts = up_by_host()
    assert len(hosts) == STACK_WORKERS
    assert sorted(h.rsplit("-", 1)[1] for h in hosts) == [str(i) for i in range(1, STACK_WORKERS + 1)]
    # Flower and the exporter agree on the workers (full nodename vs its host part).
    flower = {r["metric"]["worker"].split("@", 1)[1] for r in prom_query("flower_worker_online == 1")}
    assert set(hosts) <= flower

    victim = f"celery_worker-{STACK_WORKERS}"
    victim_host = next(h for h in hosts if h.endswith(f"-{STACK_WORKERS}"))
    faults.kill_service(victim, signal.SIGTERM)  # warm shutdown: the worker says worker-offline
    try:
        wait_for(lambda: prom_query(f"count({UP} == 0) == 1"), 60, message="exactly one worker series at 0")
        after = up_by_host()
        assert after[victim_host] == 0
        assert sorted(v for h, v in after.items() if h != victim_host) == [1.0] * (STACK_WORKERS - 1)
    finally:
        faults.restore_stack()
    wait_for(
        lambda: prom_query(f"count({UP} == 1) == {STACK_WORKERS}"), 60, message="the restarted worker to be up again"
    )
