"""charts/celery-observability, verified without a cluster: Helm's engine renders and strictly lints
it for the defaults and each optional feature; built-in kinds pass `kubernetes-validate --strict`,
custom resources their CRD schemas with unknown fields rejected; what it deploys keeps the bundle's
invariants (one exporter keeping events 60 s, one Flower, non-root, secrets from Secrets)."""
import json

import pytest
import yaml

from mixin import chart as chart_gen
from tests.k8s import crd_schemas
from tests.k8s.chart import CHART, FEATURES, REPO, of_kind, one, render, render_error, run
from mixin.config import Config

CFG = Config()

BUILTIN = {"ConfigMap", "Deployment", "Service", "PersistentVolumeClaim"}
CUSTOM = {kind for _, kind in crd_schemas.KINDS}


def test_generated_chart_files_are_current():
    for rel, text in chart_gen.build_all().items():
        path = CHART / rel
        assert path.exists(), f"{rel} missing: run `make generate`"
        assert path.read_text(encoding="utf-8") == text, f"{rel} is stale: run `make generate`"


@pytest.mark.parametrize("feature", FEATURES)
def test_renders_and_lints_strictly(feature):
    from helm_python import lint

    values = FEATURES[feature]
    report = lint(str(CHART), values, strict=True, namespace="celery")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems
    kinds = {d["kind"] for d in render(values)}
    assert kinds <= BUILTIN | CUSTOM, kinds - BUILTIN - CUSTOM


@pytest.mark.parametrize("feature", FEATURES)
def test_builtin_kinds_validate_strictly(feature, tmp_path):
    docs = [d for d in render(FEATURES[feature]) if d["kind"] in BUILTIN]
    files = []
    for i, d in enumerate(docs):
        f = tmp_path / f"{i}-{d['kind']}.yaml"
        f.write_text(yaml.safe_dump(d))
        files.append(str(f))
    for version in ("1.30.0", newest_kubernetes()):
        result = run(str(REPO / ".venv/bin/kubernetes-validate"), "--strict", "--quiet", "-k", version, *files)
        assert result.returncode == 0, f"{version}: {result.stdout}{result.stderr}"


def newest_kubernetes():
    import kubernetes_validate.utils as kv

    return max(kv.all_versions(), key=lambda v: tuple(map(int, v.split("."))))


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path):
    """The validator is strict: a typo in a Deployment is an error, not a warning."""
    dep = one(render(), "Deployment", "-flower")
    dep["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(dep))
    result = run(str(REPO / ".venv/bin/kubernetes-validate"), "--strict", "--quiet", str(f))
    assert result.returncode != 0 and "livenesProbe" in result.stdout + result.stderr


@pytest.mark.parametrize("feature", FEATURES)
def test_custom_resources_match_their_crd_schemas(feature):
    for d in render(FEATURES[feature]):
        if d["kind"] in CUSTOM:
            assert crd_schemas.errors(d) == [], (d["kind"], d["metadata"]["name"])


def test_crd_schemas_reject_unknown_fields_and_wrong_types():
    docs = render(FEATURES["everything"])
    sm = json.loads(json.dumps(one(docs, "ServiceMonitor", "-exporter")))
    sm["spec"]["endpoints"][0]["scrapeIntervall"] = "30s"
    assert any("scrapeIntervall" in e for e in crd_schemas.errors(sm))
    so = json.loads(json.dumps(one(docs, "ScaledObject")))
    so["spec"]["triggers"][0]["metadata"]["value"] = 20
    assert crd_schemas.errors(so), "KEDA trigger metadata must be strings"


def test_every_kind_the_chart_can_render_is_covered():
    kinds = {d["kind"] for d in render(FEATURES["everything"])}
    assert kinds == BUILTIN | CUSTOM


def test_monitors_carry_the_release_label_and_set_the_mixin_job_names():
    docs = render(FEATURES["everything"])
    expected = {"-exporter": ["exporter"], "-flower": ["flower"], "-rabbitmq": ["rabbitmq", "rabbitmq_queues"]}
    for suffix, keys in expected.items():
        sm = one(docs, "ServiceMonitor", suffix)
        assert sm["metadata"]["labels"]["release"] == "monitoring"
        jobs = [r["replacement"] for e in sm["spec"]["endpoints"] for r in e["relabelings"]
                if r["targetLabel"] == "job"]
        assert jobs == [getattr(CFG.jobs, k) for k in keys]
    pm = one(docs, "PodMonitor")
    assert pm["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["replacement"] == CFG.jobs.worker
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["apps"]}
    assert one(docs, "PrometheusRule")["metadata"]["labels"]["release"] == "monitoring"
    assert one(render(), "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_rabbitmq_detailed_endpoint_asks_for_the_families_the_rules_use():
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == CFG.jobs.rabbitmq_queues)
    sm = one(render(FEATURES["rabbitmq"]), "ServiceMonitor", "-rabbitmq")
    detailed = sm["spec"]["endpoints"][1]
    assert detailed["path"] == "/metrics/detailed" and detailed["params"] == job["params"]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["broker"]}
    assert detailed["metricRelabelings"][0]["regex"] == job["metric_relabel_configs"][0]["regex"]
    assert "-rabbitmq" not in {d["metadata"]["name"][-9:] for d in of_kind(render(), "ServiceMonitor")}


def _env(container):
    return {e["name"]: e for e in container.get("env", [])}


def test_exporter_is_one_replica_keeping_events_60s_with_the_bundle_launcher():
    docs = render()
    dep = one(docs, "Deployment", "-exporter")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env = _env(c)
    assert env["EVENT_QUEUE_TTL"]["value"] == "60"
    assert env["CE_BROKER_URL"]["valueFrom"]["secretKeyRef"] == {"name": "celery-broker", "key": "url"}
    assert c["command"] == ["python", "/bundle/run_exporter.py"]
    launcher = one(docs, "ConfigMap", "-exporter-launcher")
    assert launcher["data"]["run_exporter.py"] == chart_gen.launcher_text()
    assert launcher["data"]["run_exporter.py"].endswith((REPO / "exporter" / "run_exporter.py").read_text())
    assert c["readinessProbe"]["httpGet"]["path"] == "/health" and "livenessProbe" in c


def test_flower_is_one_replica_recreated_with_a_closed_api_by_default():
    dep = one(render(), "Deployment", "-flower")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env = _env(c)
    assert "FLOWER_UNAUTHENTICATED_API" not in env and "FLOWER_BASIC_AUTH" not in env
    assert "FLOWER_PERSISTENT" not in env
    assert env["CELERY_BROKER_URL"]["valueFrom"]["secretKeyRef"]["name"] == "celery-broker"
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthcheck"
    assert not of_kind(render(), "PersistentVolumeClaim")


def test_flower_auth_persistence_and_open_api_follow_the_values():
    env = _env(one(render(FEATURES["flower-auth"]), "Deployment", "-flower")["spec"]["template"]["spec"]["containers"][0])
    assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"] == {"name": "flower-auth", "key": "basic-auth"}
    assert env["FLOWER_BROKER_API"]["valueFrom"]["secretKeyRef"]["key"] == "management-api"
    docs = render(FEATURES["flower-persistence"])
    pvc = one(docs, "PersistentVolumeClaim")
    pod = one(docs, "Deployment", "-flower")["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}} in pod["volumes"]
    assert _env(pod["containers"][0])["FLOWER_DB"]["value"] == "/data/flower.db"
    env = _env(one(render(FEATURES["flower-open-api"]), "Deployment", "-flower")["spec"]["template"]["spec"]["containers"][0])
    assert env["FLOWER_UNAUTHENTICATED_API"]["value"] == "true"


def test_deployments_run_non_root_with_limits_and_secrets_only_from_secrets():
    for dep in of_kind(render(FEATURES["everything"]), "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["limits"] and c["resources"]["requests"]
            for e in c.get("env", []):
                if any(w in e["name"] for w in ("URL", "AUTH", "API")) and e["name"] != "FLOWER_UNAUTHENTICATED_API":
                    assert "secretKeyRef" in e.get("valueFrom", {}), e


def test_keda_counts_ready_and_unacked_messages_with_string_metadata():
    assert not of_kind(render(), "ScaledObject"), "autoscaling must be off by default"
    docs = render(FEATURES["autoscaling"])
    so, ta = one(docs, "ScaledObject"), one(docs, "TriggerAuthentication")
    spec = so["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["cooldownPeriod"]) == (2, 7, 120)
    assert spec["scaleTargetRef"] == {"name": "celery-worker"}
    trigger = spec["triggers"][0]
    assert trigger["type"] == "rabbitmq" and trigger["metadata"]["protocol"] == "http"
    assert trigger["metadata"]["mode"] == "QueueLength" and trigger["metadata"]["value"] == "15"
    assert all(isinstance(v, str) for v in trigger["metadata"].values())
    assert trigger["authenticationRef"]["name"] == ta["metadata"]["name"]
    assert ta["spec"]["secretTargetRef"] == [{"parameter": "host", "name": "celery-broker", "key": "management-url"}]


def test_keda_rejects_min_above_max_naming_the_values():
    error = render_error({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}})
    assert error and "autoscaling.minReplicas (5)" in error and "autoscaling.maxReplicas (2)" in error


@pytest.mark.parametrize("release", ["obs", "celery-observability", "prod-celery-observability-eu"])
def test_kubernetes_rules_find_the_hpa_keda_makes_for_the_chart(release):
    """The kubernetes profile's backlog alerts wait for KEDA's HPA `keda-hpa-<ScaledObject>` to reach
    its maximum: the rules' regex must match the name the chart gives the ScaledObject."""
    import re

    from helm_python import Chart

    out = Chart.load(str(CHART)).render(FEATURES["autoscaling"], name=release, namespace="celery", is_install=True)
    so = next(d for d in yaml.safe_load_all(out["celery-observability/templates/keda.yaml"]) if d and d["kind"] == "ScaledObject")
    pattern = chart_gen.config().autoscaling.hpa
    assert re.fullmatch(pattern, f"keda-hpa-{so['metadata']['name']}")
    assert not re.fullmatch(pattern, "keda-hpa-some-other-app")


@pytest.mark.parametrize("feature", ["defaults", "everything"])
def test_client_dry_run_install_gives_the_rendered_objects(feature):
    """`helm install --dry-run=client` through Helm's SDK: no cluster is contacted (in-memory release
    storage), the release is assembled and its manifest holds exactly the rendered objects."""
    from helm_python import Chart, Config

    with Config(namespace="celery", storage_driver="memory", kubeconfig_path=str(REPO / "no-such-kubeconfig")) as cfg:
        release = cfg.install(Chart.load(str(CHART)), "obs", FEATURES[feature], dry_run="client", namespace="celery")
    manifest = [d for d in yaml.safe_load_all(release["manifest"]) if d]
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, manifest)) == sorted(map(key, render(FEATURES[feature])))
    assert release["chart_name"] == "celery-observability" and "port-forward" in release["notes"]


@pytest.mark.parametrize("values, where, says", [
    ({"autoscalling": {"enabled": True}}, "at ''", "'autoscalling' not allowed"),
    ({"autoscaling": {"maxReplicas": "ten"}}, "/autoscaling/maxReplicas", "want integer"),
    ({"grafana": {"datasourceUid": "my prom"}}, "/grafana/datasourceUid", "does not match"),
    ({"scrapeInterval": "30 seconds"}, "/scrapeInterval", "does not match"),
    ({"flower": {"persistence": {"enabled": "yes"}}}, "/flower/persistence/enabled", "want boolean"),
])
def test_bad_values_are_refused_naming_the_value(values, where, says):
    """values.schema.json: Helm refuses a typo or a wrong type before rendering anything."""
    error = render_error(values)
    assert error and where in error and says in error, error
