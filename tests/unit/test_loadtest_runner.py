"""The paced submitter: due times honoured on a fake clock and on the real one, concurrency, stop."""

import threading
import time

import pytest

from loadtest.runner import submit_all
from loadtest.scenarios import Batch, batches, resolve


def batch(due):
    return Batch(due=due, task="process_task", count=1, task_num_start=1, timeout=0, fail_count=0, memory_mb=0)


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def test_fake_clock_sleeps_exactly_until_each_batch_is_due():
    clock = FakeClock()
    sent = []
    plan = [batch(d) for d in (0, 0.5, 0.5, 1.25, 3.0)]
    submit_all(plan, sent.append, concurrency=1, stop=threading.Event(), clock=clock, sleep=clock.sleep)
    assert sent == plan
    assert clock.now == pytest.approx(103.0)  # never oversleeps the last due time
    assert max(clock.sleeps) <= 0.05  # short slices: Ctrl-C is honoured quickly


def test_real_clock_50_per_second_is_within_5_percent():
    plan = batches(resolve("steady", rate=50, duration=2))
    times = []
    start = []

    def send(b):
        times.append((time.monotonic(), b))

    submit_all(plan, send, concurrency=4, stop=threading.Event(), on_start=start.append)
    elapsed = max(t for t, _ in times) - start[0]
    assert sum(b.count for _, b in times) / elapsed == pytest.approx(50, rel=0.05)
    for t, b in times:
        assert -0.001 <= t - start[0] - b.due < 0.05  # each request near its due time, never early


def test_at_most_concurrency_requests_in_flight():
    in_flight = peak = 0
    lock = threading.Lock()

    def send(b):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1

    submit_all([batch(0)] * 20, send, concurrency=3, stop=threading.Event())
    assert peak == 3


def test_stop_ends_submitting_early():
    stop = threading.Event()
    sent = []

    def send(b):
        sent.append(b)
        if len(sent) == 3:
            stop.set()

    t0 = time.monotonic()
    submit_all([batch(i * 0.01) for i in range(1000)], send, concurrency=1, stop=stop)
    assert 3 <= len(sent) <= 4 and time.monotonic() - t0 < 1
