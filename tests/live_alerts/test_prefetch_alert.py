"""CeleryTaskPrefetchTimeHigh fires when tasks wait at a worker behind a long one, and resolves.

A probe worker with one pool slot and prefetch 16 receives a long task and ten short ones: the
short ones are prefetched at once and each waits there until the slot frees (Flower's prefetch
time, per worker: worker/flower_metrics.py), while the broker queue stays empty.
"""

import pytest

from tests.alerting import AlertCheck
from tests.live import prom_query, prom_scalar, wait_finished
from tests.probe import ProbeWorker

pytestmark = pytest.mark.stack


def test_tasks_waiting_behind_a_long_one_fire_the_prefetch_alert(stack):
    with ProbeWorker() as probe:
        check = AlertCheck("CeleryTaskPrefetchTimeHigh", worker=probe.nodename)
        ids = [probe.send("process_task", task_num=0, timeout=25)]
        ids += [probe.send("process_task", task_num=i, timeout=3) for i in range(1, 11)]
        alert = check.fire()
        assert alert["labels"]["job"] == "flower"
        assert "task" not in alert["labels"]  # the bundle's Flower keeps this gauge per worker
        # The wait was at the worker, not in the broker: its queue held nothing ready.
        assert prom_scalar('max_over_time(rabbitmq_detailed_queue_messages_ready{queue="probe"}[2m])') == 0
        waited = prom_scalar(f'max_over_time(flower_task_prefetch_time_seconds{{worker="{probe.nodename}"}}[5m])')
        print(f"fired {check.fired_after:.0f}s after the load started; longest wait at the worker {waited:.1f}s")
        assert waited >= 20
        done = wait_finished([i for i in ids], 120)
        assert {b["state"] for b in done.values()} == {"SUCCESS"}
        check.resolve()
    assert not prom_query(f'ALERTS{{alertname="CeleryTaskPrefetchTimeHigh", worker="{probe.nodename}"}}')
