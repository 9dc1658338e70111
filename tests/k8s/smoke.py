"""`make k8s-smoke`: the chart on a real cluster (the current kubectl context).

Needs kube-prometheus-stack installed (release name from KPS_RELEASE, default
kube-prometheus-stack), `helm` and `kubectl` on PATH, and the project's image available to the
cluster for the demo's app and workers (kind: `kind load docker-image celery-observability-bundle:0.1.0`;
the chart's own pods use public images). Deploys examples/demo
and the chart into namespace NAMESPACE (default celery-demo), waits until Prometheus scrapes the
exporter, Flower, the workers and RabbitMQ, submits tasks through the app and waits until the
exporter's counters count them. Not part of `make test`: no cluster can run where the tests run.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

CHART = Path(__file__).resolve().parents[2] / "charts" / "celery-observability"
NS = os.environ.get("NAMESPACE", "celery-demo")
KPS = os.environ.get("KPS_RELEASE", "kube-prometheus-stack")
TASKS = 20


def sh(*args, check=True, capture=True, timeout=600):
    r = subprocess.run(args, capture_output=capture, text=True, timeout=timeout)
    if check and r.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{r.stderr}")
    return r.stdout if capture else ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def port_forward(namespace, target, port):
    local = free_port()
    p = subprocess.Popen(
        ["kubectl", "-n", namespace, "port-forward", target, f"{local}:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        yield f"http://127.0.0.1:{local}"
    finally:
        p.terminate()
        p.wait(timeout=10)


def wait(what, check, timeout=600, every=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            print(f"ok: {what}")
            return result
        time.sleep(every)
    sys.exit(f"timed out after {timeout}s waiting for: {what}")


def ensure_secret():
    if subprocess.run(["kubectl", "-n", NS, "get", "secret", "celery-broker"], capture_output=True).returncode == 0:
        return
    pw = secrets.token_hex(16)
    sh(
        "kubectl",
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "celery-broker",
        "--from-literal=username=celery",
        f"--from-literal=password={pw}",
        f"--from-literal=url=amqp://celery:{pw}@rabbitmq:5672//",
        f"--from-literal=management-api=http://celery:{pw}@rabbitmq:15672/api/",
        f"--from-literal=management-url=http://celery:{pw}@rabbitmq:15672/%2F",
        f"--from-literal=flower-basic-auth=admin:{secrets.token_hex(12)}",
        f"--from-literal=flask-secret-key={secrets.token_hex(32)}",
    )


def main():
    for tool in ("kubectl", "helm"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found on PATH: make k8s-smoke needs a real cluster and its tools")
    if subprocess.run(["kubectl", "config", "current-context"], capture_output=True).returncode != 0:
        sys.exit("no kubectl context: make k8s-smoke needs a real cluster")
    sh("kubectl", "get", "crd", "prometheusrules.monitoring.coreos.com")

    sh("kubectl", "apply", "-f", str(CHART / "examples" / "demo" / "namespace.yaml"))
    ensure_secret()
    sh("kubectl", "apply", "-k", str(CHART / "examples" / "demo"))
    sh(
        "helm",
        "upgrade",
        "--install",
        "celery-observability",
        str(CHART),
        "-n",
        NS,
        "-f",
        str(CHART / "examples" / "values-demo.yaml"),
        "--set",
        f"monitorLabels.release={KPS}",
        "--wait",
        "--timeout",
        "10m",
    )
    for dep in ("rabbitmq", "redis", "celery-demo-app", "celery-worker"):
        sh("kubectl", "-n", NS, "rollout", "status", f"deployment/{dep}", "--timeout=600s")

    svc = json.loads(sh("kubectl", "get", "svc", "-A", "-l", "operated-prometheus=true", "-o", "json"))["items"]
    if not svc:
        sys.exit("no Prometheus of the Prometheus Operator found (Service labelled operated-prometheus=true)")
    prom_ns, prom_svc = svc[0]["metadata"]["namespace"], svc[0]["metadata"]["name"]
    jobs = {"celery_exporter", "flower", "celery_worker", "rabbitmq", "rabbitmq_queues"}

    with port_forward(prom_ns, f"svc/{prom_svc}", 9090) as prom, port_forward(NS, "svc/celery-demo-app", 8080) as app:

        def up_jobs():
            r = requests.get(f"{prom}/api/v1/targets", params={"state": "active"}, timeout=10).json()
            up = {
                t["labels"].get("job")
                for t in r["data"]["activeTargets"]
                if t["health"] == "up" and t["labels"].get("namespace") == NS
            }
            return jobs <= up

        wait(f"targets up in Prometheus: {sorted(jobs)}", up_jobs)

        def counted():
            q = 'sum(celery_task_succeeded_total{job="celery_exporter", name="process_task"})'
            r = requests.get(f"{prom}/api/v1/query", params={"query": q}, timeout=10).json()["data"]["result"]
            return float(r[0]["value"][1]) if r else 0.0

        before = counted()
        r = requests.post(f"{app}/api/tasks", json={"task": "process_task", "count": TASKS, "timeout": 0.2}, timeout=30)
        r.raise_for_status()
        wait(f"{TASKS} tasks counted by the exporter", lambda: counted() - before >= TASKS)

        rules = requests.get(f"{prom}/api/v1/rules", timeout=10).json()["data"]["groups"]
        names = {g["name"] for g in rules}
        if not {"celery.rules", "celery.alerts"} <= names:
            sys.exit(f"the chart's rule groups are not loaded by Prometheus: {sorted(names)}")
        print("ok: rule groups celery.rules and celery.alerts loaded")
    print("k8s-smoke passed")


if __name__ == "__main__":
    main()
