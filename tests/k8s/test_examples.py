"""examples/: the demo manifests are valid Kubernetes objects, and the example values deploy the
chart against them (the PodMonitor selects the demo workers, KEDA scales the demo Deployment; the
Redis example runs a redis_exporter and KEDA's redis trigger)."""

import shutil

import pytest
import yaml

from tests.k8s import crd_schemas
from tests.k8s.chart import CHART, K8S_VERSIONS, k8s_errors, one, render, run

EXAMPLES = CHART / "examples"


def demo_values(*names):
    values = {}
    for name in names:
        for k, v in yaml.safe_load((EXAMPLES / name).read_text()).items():
            values[k] = {**values.get(k, {}), **v} if isinstance(v, dict) else v
    return values


def load_demo():
    """examples/demo as kustomize builds it: its resources, namespaced objects in its namespace."""
    kustomization = yaml.safe_load((EXAMPLES / "demo" / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        for d in yaml.safe_load_all((EXAMPLES / "demo" / resource).read_text()):
            if d and d["kind"] != "Namespace":
                d["metadata"]["namespace"] = kustomization["namespace"]
            if d:
                docs.append(d)
    return docs


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    docs = load_demo()
    path = tmp_path_factory.mktemp("demo") / "demo.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path, docs


def test_kubectl_kustomize_builds_the_same_demo():
    if shutil.which("kubectl") is None:
        pytest.skip(
            "kubectl not installed: `kubectl kustomize` cannot be compared (the demo is still validated from its files)"
        )
    result = run("kubectl", "kustomize", str(EXAMPLES / "demo"))
    assert result.returncode == 0, result.stderr
    key = lambda d: (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))  # noqa: E731
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert sorted(built, key=key) == sorted(load_demo(), key=key)


def test_demo_manifests_validate_strictly(demo):
    _, docs = demo
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"celery-demo"}
    for version in K8S_VERSIONS:
        for d in docs:
            assert k8s_errors(d, version) == [], (version, d["kind"], d["metadata"]["name"])


def test_demo_workers_shut_down_warm_within_their_grace_period(demo):
    _, docs = demo
    worker = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "celery-worker")
    pod = worker["spec"]["template"]["spec"]
    from worker import settings

    assert pod["terminationGracePeriodSeconds"] > settings.MAX_TIMEOUT_SECONDS
    from worker.celery_app import app

    assert app.conf.worker_prefetch_multiplier == 1 and app.conf.task_acks_late is True


def test_example_values_select_the_demo(demo):
    _, docs = demo
    objs = render(demo_values("values-demo.yaml", "values-keda.yaml"))
    for d in objs:
        if d["kind"] in {k for _, k in crd_schemas.KINDS}:
            assert crd_schemas.errors(d) == []
    worker = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "celery-worker")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    pm = one(objs, "PodMonitor")
    assert pm["spec"]["selector"]["matchLabels"].items() <= labels.items()
    port = pm["spec"]["podMetricsEndpoints"][0]["port"]
    assert port in [p["name"] for p in worker["spec"]["template"]["spec"]["containers"][0]["ports"]]
    assert one(objs, "ScaledObject")["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    rabbit = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "rabbitmq")
    sm = one(objs, "ServiceMonitor", "-rabbitmq")
    assert sm["spec"]["selector"]["matchLabels"].items() <= rabbit["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] in [p["name"] for p in rabbit["spec"]["ports"]]


def test_the_demo_needs_no_local_image_for_the_charts_pods():
    for d in render(demo_values("values-demo.yaml", "values-keda.yaml")):
        if d["kind"] == "Deployment":
            for c in d["spec"]["template"]["spec"]["containers"]:
                assert not c["image"].startswith("celery-observability-bundle"), c["image"]


def test_redis_example_values_render_a_redis_exporter_and_trigger():
    objs = render(demo_values("values-redis.yaml"))
    for d in objs:
        if d["kind"] in {k for _, k in crd_schemas.KINDS}:
            assert crd_schemas.errors(d) == []
    assert one(objs, "ScaledObject")["spec"]["triggers"][0]["type"] == "redis"
    assert one(objs, "Deployment", "-redis-exporter")
