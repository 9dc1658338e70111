"""The worker collector measures a real process tree: parent + children, CPU and memory."""

import subprocess
import sys
import time

import psutil
import pytest

from worker.metrics import WorkerProcessTreeCollector, cpu_limit_cores

# A parent that starts a CPU-burning child and then waits.
TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time\\nend=time.time()+30\\nwhile time.time()<end: pass"])
time.sleep(30)
"""


@pytest.fixture
def tree():
    proc = subprocess.Popen([sys.executable, "-c", TREE])
    root = psutil.Process(proc.pid)
    deadline = time.time() + 10
    while not root.children() and time.time() < deadline:
        time.sleep(0.05)
    yield root
    for p in root.children(recursive=True) + [root]:
        p.kill()
    proc.wait()


def samples(collector):
    return {fam.name: fam.samples[0].value for fam in collector.collect()}


class FakePool:
    num_processes = 4


def test_cpu_and_memory_cover_the_whole_tree(tree):
    collector = WorkerProcessTreeCollector("celery_worker-1@host", FakePool(), root=tree)
    child = tree.children()[0]
    first, child_before = samples(collector), sum(child.cpu_times()[:2])
    time.sleep(1.0)
    second, child_after = samples(collector), sum(child.cpu_times()[:2])
    # The busy child, not the sleeping parent, burns the CPU: only a tree-wide sum sees it. (What
    # the child gets depends on the machine's load, so compare with the child's own account.)
    grew = second["celery_worker_cpu_seconds"] - first["celery_worker_cpu_seconds"]
    assert child_after - child_before > 0.05
    assert grew >= 0.9 * (child_after - child_before)
    rss = sum(p.memory_info().rss for p in [tree] + tree.children(recursive=True))
    assert second["celery_worker_memory_rss_bytes"] == pytest.approx(rss, rel=0.2)
    assert second["celery_worker_processes"] == 2
    assert second["celery_worker_pool_processes"] == 4
    assert second["celery_worker_cpu_limit_cores"] == cpu_limit_cores() > 0


def test_labels_keep_the_full_nodename(tree):
    collector = WorkerProcessTreeCollector("celery_worker-2@vm", root=tree)
    for fam in collector.collect():
        assert fam.samples[0].labels == {"worker": "celery_worker-2@vm"}


def test_cpu_limit_can_be_set(monkeypatch):
    monkeypatch.setenv("WORKER_CPU_LIMIT_CORES", "0.5")
    assert cpu_limit_cores() == 0.5


class Request:
    """What celery.worker.state keeps of a task request."""

    def __init__(self, task_id, name):
        self.id, self.name = task_id, name


def test_tasks_started_counts_each_task_the_worker_accepted(tree):
    from celery.worker import state

    collector = WorkerProcessTreeCollector("celery_worker-1@host", root=tree)
    before = samples(collector)["celery_worker_tasks_started"]
    for i in range(3):
        request = Request(f"task-{i}", "process_task")
        state.task_accepted(request)  # what the worker runs when it sends task-started
        state.task_ready(request)
    assert samples(collector)["celery_worker_tasks_started"] == before + 3
