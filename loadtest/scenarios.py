"""Load shapes: what each scenario submits, and how the options turn it into a plan of requests.

Everything here is pure (no I/O, no clock), so the unit tests can check it exactly.
"""

import math
from dataclasses import dataclass

from app.validation import failing_indexes
from mixin.config import Config

_T = Config().thresholds

# Failures at four times the share the success-rate alert tolerates (at most half), so it fires.
FAILURE_SHARE = min(0.5, round(4 * (1 - _T.success_ratio_min), 2))

# The API accepts up to 1000 tasks per request; smaller requests keep the submit times fine-grained.
MAX_TASKS_PER_REQUEST = 100
# Above this many requests per second, tasks are grouped (count > 1 per request): the app is one
# gunicorn process, and fewer, larger requests keep the achieved task rate accurate.
MAX_REQUESTS_PER_SECOND = 20
MAX_TASKS_PER_RUN = 100_000


@dataclass(frozen=True)
class Scenario:
    name: str
    help: str
    tasks: tuple  # ((task name, timeout seconds), ...): requests use them in turn
    rate: float | None = 10.0  # tasks per second; None submits everything at once
    duration: float | None = 30.0  # seconds of submitting (with a rate)
    count: int | None = None  # a fixed number of tasks instead of rate x duration
    fail_rate: float = 0.0
    memory_mb: int = 0
    wait_timeout: float = 120.0  # how long to wait for the tasks after the last submit


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "steady",
            "a constant rate of short tasks for a duration (10/s for 30 s)",
            (("process_task", 0.1),),
            rate=10,
            duration=30,
            wait_timeout=60,
        ),
        Scenario(
            "burst",
            "the guide's scenario 2: 20 x process_task timeout=10 in one request, watch them spread over the workers",
            (("process_task", 10.0),),
            rate=None,
            duration=None,
            count=20,
            wait_timeout=180,
        ),
        Scenario(
            "failures",
            f"{FAILURE_SHARE:.0%} of the tasks raise SimulatedTaskError (2/s for 180 s): long enough for "
            f"CelerySuccessRateLow (below {_T.success_ratio_min:.0%} for {_T.success_for}) "
            "to be firing at the end",
            (("process_task", 0.1),),
            rate=2,
            duration=180,
            fail_rate=FAILURE_SHARE,
            wait_timeout=60,
        ),
        Scenario(
            "backlog",
            "more work than 3 workers x 2 processes can take (4/s of 6 s tasks for 90 s): "
            "the queue grows for ~6 min, CeleryQueueBacklog fires",
            (("process_task", 6.0),),
            rate=4,
            duration=90,
            wait_timeout=1200,
        ),
        Scenario(
            "cpu",
            "CPU-bound process_data, 1 s each at 3/s for 60 s (--duration 420 for CeleryWorkerCpuHigh)",
            (("process_data", 1.0),),
            rate=3,
            duration=60,
        ),
        # 1 MB per task: a worker's memory grows ~30 MB/min, far above the alert's 1 MiB/min, yet each
        # pool process takes ~15 min to reach worker_max_memory_per_child (256 MiB), so the growth stays
        # visible for the alert's 5m window + 10m `for` before a replaced process hides it.
        Scenario(
            "memory",
            "every task leaves 1 MB behind in its worker, 0.5/s for 60 s "
            "(--duration 900 for CeleryWorkerMemoryGrowing)",
            (("process_task", 0.1),),
            rate=0.5,
            duration=60,
            memory_mb=1,
            wait_timeout=60,
        ),
        Scenario(
            "slow",
            "4 s tasks at 1/s for 60 s (after a baseline of short tasks: CeleryTaskRuntimeRising)",
            (("process_task", 4.0),),
            rate=1,
            duration=60,
        ),
        Scenario(
            "mixed",
            "both task names in turn, 10% failing, 5/s for 30 s",
            (("process_task", 0.5), ("process_data", 0.2)),
            rate=5,
            duration=30,
            fail_rate=0.1,
        ),
    )
}


class PlanError(ValueError):
    """A combination of options that cannot be run; the message names the options."""


@dataclass(frozen=True)
class Plan:
    scenario: str
    count: int
    rate: float | None  # None: as fast as the concurrency allows
    tasks: tuple
    fail_rate: float
    memory_mb: int
    wait_timeout: float


@dataclass(frozen=True)
class Batch:
    """One POST /api/tasks request."""

    due: float  # seconds after the start when it may be sent
    task: str
    count: int
    task_num_start: int
    timeout: float
    fail_count: int
    memory_mb: int

    def payload(self):
        # fail_rate = fail_count / count makes the app fail exactly fail_count of these tasks
        # (its failing_indexes floors a telescoping sum, with an epsilon for float error).
        body = {
            "task": self.task,
            "count": self.count,
            "task_num_start": self.task_num_start,
            "timeout": self.timeout,
            "fail_rate": self.fail_count / self.count,
        }
        if self.memory_mb:
            body["memory_mb"] = self.memory_mb
        return body


def resolve(
    name, rate=None, duration=None, count=None, timeout=None, fail_rate=None, memory_mb=None, wait_timeout=None
):
    """The scenario's defaults overridden by the options given (None = not given)."""
    sc = SCENARIOS[name]
    if None not in (rate, duration, count):
        raise PlanError("give at most two of --rate, --duration and --count (the third follows from them)")
    plan_rate = rate if rate is not None else sc.rate
    if count is not None:
        total = count
        if duration is not None and rate is None:
            plan_rate = count / duration
    elif duration is not None:
        if plan_rate is None:  # an all-at-once scenario spread over the duration given
            total = sc.count
            plan_rate = total / duration
        else:
            total = round(plan_rate * duration)
    elif sc.count is not None:
        total = sc.count
    else:
        total = round(plan_rate * sc.duration)
    if total < 1:
        raise PlanError(
            f"--rate {plan_rate:g} for {duration or sc.duration:g} s gives no task; raise --rate or --duration"
        )
    if total > MAX_TASKS_PER_RUN:
        raise PlanError(f"{total} tasks is more than {MAX_TASKS_PER_RUN} per run; lower --rate, --duration or --count")
    tasks = sc.tasks if timeout is None else tuple((task, timeout) for task, _ in sc.tasks)
    return Plan(
        scenario=name,
        count=total,
        rate=plan_rate,
        tasks=tasks,
        fail_rate=sc.fail_rate if fail_rate is None else fail_rate,
        memory_mb=sc.memory_mb if memory_mb is None else memory_mb,
        wait_timeout=sc.wait_timeout if wait_timeout is None else wait_timeout,
    )


def batch_size(rate):
    if rate is None:
        return MAX_TASKS_PER_REQUEST
    return max(1, min(MAX_TASKS_PER_REQUEST, math.ceil(rate / MAX_REQUESTS_PER_SECOND)))


def batches(plan):
    """The requests, in order. A batch is due when the rate has 'earned' all its tasks (a token
    bucket starting empty), so submitted / elapsed equals the rate at every batch boundary."""
    size = batch_size(plan.rate)
    fails = failing_indexes(plan.count, plan.fail_rate)
    out = []
    for k, start in enumerate(range(0, plan.count, size)):
        n = min(size, plan.count - start)
        task, timeout = plan.tasks[k % len(plan.tasks)]
        due = 0.0 if plan.rate is None else (start + n) / plan.rate
        fail_count = sum(1 for i in range(start, start + n) if i in fails)
        out.append(
            Batch(
                due=due,
                task=task,
                count=n,
                task_num_start=start + 1,
                timeout=timeout,
                fail_count=fail_count,
                memory_mb=plan.memory_mb,
            )
        )
    return out
