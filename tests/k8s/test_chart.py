"""charts/celery-observability, verified without a cluster: Helm's engine renders and strictly lints
every scenario of the render matrix (tests/k8s/chart.py SCENARIOS); built-in kinds pass
kubernetes-validate's strict schemas for Kubernetes 1.29 to 1.32, custom resources their CRD
schemas with unknown fields rejected; what it deploys keeps the bundle's invariants (one exporter
keeping events 60 s, one Flower, public pinned images, non-root, secrets from Secrets, names that
fit), and bad values are refused with a message naming them."""

import json
import re
import subprocess

import pytest
import yaml

from mixin import chart as chart_gen
from tests.k8s import crd_schemas
from tests.k8s.chart import (
    CHART,
    K8S_VERSIONS,
    LONG_RELEASE,
    NAME,
    NAMESPACE,
    REPO,
    SCENARIOS,
    chart_and_values,
    k8s_errors,
    notes,
    of_kind,
    one,
    render,
    render_error,
    scenario_docs,
)

CFG = chart_gen.config()
BUILTIN = {"ConfigMap", "Deployment", "Service", "PersistentVolumeClaim", "ServiceAccount"}
CUSTOM = {kind for _, kind in crd_schemas.KINDS}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FLOWER_CONFIG = CHART / "files" / "celery_observability_flower.py"


@pytest.fixture(scope="module", autouse=True)
def quiet_helm():
    from helm_python import disable_logging

    disable_logging()


# --- The render matrix --------------------------------------------------------------------------------


def test_the_matrix_covers_what_a_platform_needs():
    assert len(SCENARIOS) >= 8
    assert {
        "defaults",
        "team-a",
        "team-b",
        "redis",
        "existing-secrets",
        "rabbitmq-no-keda",
        "no-flower",
        "long-release-name",
        "subchart-global",
    } <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_lints_strictly(scenario):
    from helm_python import lint

    s = SCENARIOS[scenario]
    path, values = chart_and_values(s)
    for version in (K8S_VERSIONS[0], K8S_VERSIONS[-1]):
        report = lint(str(path), values, strict=True, namespace=s.namespace, kube_version=version)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, (version, problems)
    kinds = {d["kind"] for d in scenario_docs(scenario)}
    assert kinds <= BUILTIN | CUSTOM, kinds - BUILTIN - CUSTOM


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_builtin_kinds_validate_strictly_for_each_kubernetes_version(scenario):
    docs = [d for d in scenario_docs(scenario) if d["kind"] in BUILTIN]
    assert docs
    for version in K8S_VERSIONS:
        for d in docs:
            assert k8s_errors(d, version) == [], (version, d["kind"], d["metadata"]["name"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_custom_resources_match_their_crd_schemas(scenario):
    for d in scenario_docs(scenario):
        if d["kind"] in CUSTOM:
            assert crd_schemas.errors(d) == [], (d["kind"], d["metadata"]["name"], crd_schemas.errors(d)[:3])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_names_fit_kubernetes_limits(scenario):
    for d in scenario_docs(scenario):
        name = d["metadata"]["name"]
        assert len(name) <= 253 and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), name
        if d["kind"] in {"Service", "ScaledObject"}:  # a DNS label; KEDA labels the HPA with the name
            assert len(name) <= 63 and DNS_LABEL.fullmatch(name), name
        for key, value in d["metadata"].get("labels", {}).items():
            assert len(str(value)) <= 63, (name, key, value)


def test_the_validator_is_strict(tmp_path):
    """A typo in a Deployment is an error, not a warning, in-process as with `kubernetes-validate --strict`."""
    dep = one(render(), "Deployment", "-flower")
    dep["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert any("livenesProbe" in e for e in k8s_errors(dep, K8S_VERSIONS[-1]))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(dep))
    result = subprocess.run(
        [
            str(REPO / ".venv/bin/kubernetes-validate"),
            "--strict",
            "--quiet",
            "-k",
            K8S_VERSIONS[0],
            str(tmp_path / "bad.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "livenesProbe" in result.stdout + result.stderr


def test_crd_schemas_reject_unknown_fields_and_wrong_types():
    docs = scenario_docs("everything")
    sm = json.loads(json.dumps(one(docs, "ServiceMonitor", "-exporter")))
    sm["spec"]["endpoints"][0]["scrapeIntervall"] = "30s"
    assert any("scrapeIntervall" in e for e in crd_schemas.errors(sm))
    so = json.loads(json.dumps(one(docs, "ScaledObject")))
    so["spec"]["triggers"][0]["metadata"]["value"] = 20
    assert crd_schemas.errors(so), "KEDA trigger metadata must be strings"


def test_every_kind_the_chart_can_render_is_covered():
    kinds = {d["kind"] for name in SCENARIOS for d in scenario_docs(name)}
    assert kinds == BUILTIN | CUSTOM


# --- Monitors: job and celery_deployment on every target ------------------------------------------------


def _endpoints(monitor):
    return monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"]


@pytest.mark.parametrize(
    "scenario", ["everything", "redis", "redis-own-exporter", "long-release-name", "subchart-global"]
)
def test_every_monitor_stamps_job_and_the_release_label_last(scenario):
    s = SCENARIOS[scenario]
    docs = scenario_docs(scenario)
    full = one(docs, "PrometheusRule")["metadata"]["name"] if of_kind(docs, "PrometheusRule") else None
    monitors = of_kind(docs, "ServiceMonitor") + of_kind(docs, "PodMonitor")
    assert monitors
    for m in monitors:
        for e in _endpoints(m):
            tail = e["relabelings"][-2:]
            assert [r["targetLabel"] for r in tail] == ["job", chart_gen.DEPLOYMENT_LABEL]
            assert tail[0]["replacement"] in CFG.jobs.model_dump().values()
            deployment = tail[1]["replacement"]
            assert deployment.startswith(f"{s.namespace}/") and (full is None or deployment.endswith(f"/{full}"))


def test_monitors_keep_the_users_relabelings_and_labels():
    docs = scenario_docs("everything")
    expected = {"-exporter": ["celery_exporter"], "-flower": ["flower"], "-rabbitmq": ["rabbitmq", "rabbitmq_queues"]}
    for suffix, jobs in expected.items():
        sm = one(docs, "ServiceMonitor", suffix)
        assert sm["metadata"]["labels"]["release"] == "monitoring"
        assert [
            r["replacement"] for e in sm["spec"]["endpoints"] for r in e["relabelings"] if r["targetLabel"] == "job"
        ] == jobs
    exporter = one(docs, "ServiceMonitor", "-exporter")["spec"]["endpoints"][0]
    assert exporter["relabelings"][0]["targetLabel"] == "team"
    assert exporter["metricRelabelings"][0]["regex"] == "python_gc_.*"
    pm = one(docs, "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["apps"]}
    assert one(docs, "PrometheusRule")["metadata"]["labels"]["release"] == "monitoring"
    assert one(scenario_docs("defaults"), "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for d in docs:
        assert d["metadata"]["labels"]["team"] == "payments", d["metadata"]["name"]
        assert d["metadata"]["labels"]["app.kubernetes.io/name"] == "celery-obs"


def test_rabbitmq_detailed_endpoint_asks_for_the_families_the_rules_use():
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == CFG.jobs.rabbitmq_queues)
    sm = one(scenario_docs("rabbitmq-keda"), "ServiceMonitor", "-rabbitmq")
    detailed = sm["spec"]["endpoints"][1]
    assert detailed["path"] == "/metrics/detailed" and detailed["params"] == job["params"]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["broker"]}
    assert detailed["metricRelabelings"][0]["regex"] == job["metric_relabel_configs"][0]["regex"]
    names = [d["metadata"]["name"] for d in of_kind(scenario_docs("defaults"), "ServiceMonitor")]
    assert not [n for n in names if n.endswith("-rabbitmq")]


# --- Workloads ----------------------------------------------------------------------------------------


def _env(container):
    return {e["name"]: e for e in container.get("env", [])}


def _container(docs, suffix):
    return one(docs, "Deployment", suffix)["spec"]["template"]["spec"]["containers"][0]


def test_exporter_is_one_replica_keeping_events_60s_with_the_bundle_launcher():
    docs = render()
    dep = one(docs, "Deployment", "-exporter")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env = _env(c)
    assert env["EVENT_QUEUE_TTL"]["value"] == "60"
    assert env["CE_BROKER_URL"]["valueFrom"]["secretKeyRef"] == {"name": "celery-broker", "key": "url"}
    assert c["command"] == ["python", "/bundle/run_exporter.py"]
    assert c["image"] == "danihodovic/celery-exporter:0.11.2"
    launcher = one(docs, "ConfigMap", "-exporter-launcher")
    assert launcher["data"]["run_exporter.py"] == chart_gen.launcher_text()
    assert launcher["data"]["run_exporter.py"].endswith((REPO / "exporter" / "run_exporter.py").read_text())
    assert c["readinessProbe"]["httpGet"]["path"] == "/health" and "livenessProbe" in c


def test_several_queues_reach_the_exporter_as_one_comma_separated_value():
    """The exporter's --queues takes one comma-separated value; a repeated -Q keeps only the last."""
    args = _container(scenario_docs("everything"), "-exporter")["args"]
    assert "--queues=celery,priority" in args and "-Q" not in args
    assert args[-1] == "--queue-metrics-interval=20"
    assert "--queues=a,b" in _container(render({"exporter": {"queues": ["a", "b"]}}), "-exporter")["args"]


def test_flower_runs_the_public_image_with_its_event_queue_ttl():
    docs = render()
    dep = one(docs, "Deployment", "-flower")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    values = yaml.safe_load((CHART / "values.yaml").read_text())["flower"]["image"]
    assert c["image"] == f"{values['repository']}:{values['tag']}" == "mher/flower:2.1.0"
    # Celery's options before `flower`: the broker, and the configuration module the chart mounts.
    assert c["command"][:5] == [
        "celery",
        "--broker=$(CELERY_BROKER_URL)",
        "--workdir=/etc/celery-observability",
        "--config=celery_observability_flower",
        "flower",
    ]
    env = _env(c)
    assert env["EVENT_QUEUE_TTL"]["value"] == "60" and env["FLOWER_PURGE_OFFLINE_WORKERS"]["value"] == "60"
    assert "FLOWER_UNAUTHENTICATED_API" not in env and "FLOWER_BASIC_AUTH" not in env and "FLOWER_PERSISTENT" not in env
    assert env["CELERY_BROKER_URL"]["valueFrom"]["secretKeyRef"]["name"] == "celery-broker"
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthcheck"
    assert pod["securityContext"]["runAsUser"] == 1000  # the image's flower user
    cm = one(docs, "ConfigMap", "-flower-celeryconfig")
    assert cm["data"]["celery_observability_flower.py"] == FLOWER_CONFIG.read_text()
    assert {"name": "celeryconfig", "mountPath": "/etc/celery-observability", "readOnly": True} in c["volumeMounts"]
    assert not of_kind(docs, "PersistentVolumeClaim")


def test_flowers_celery_configuration_sets_the_event_queue_ttl(tmp_path):
    """Celery reads the module the chart mounts the way the Flower container runs it."""
    (tmp_path / "celery_observability_flower.py").write_text(FLOWER_CONFIG.read_text())
    celery = str(REPO / ".venv" / "bin" / "celery")
    result = subprocess.run(
        [celery, "--broker=memory://", f"--workdir={tmp_path}", "--config=celery_observability_flower", "report"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={"EVENT_QUEUE_TTL": "61", "EVENT_QUEUE_EXPIRES": "121", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "event_queue_ttl: 61.0" in result.stdout and "event_queue_expires: 121.0" in result.stdout


def _flower_metric_relabelings(docs):
    [monitor] = [d for d in of_kind(docs, "ServiceMonitor") if d["metadata"]["name"].endswith("-flower")]
    return monitor["spec"]["endpoints"][0].get("metricRelabelings")


def test_flower_exposes_its_metrics_per_worker_unless_per_task_metrics():
    """Flower runs the mounted flowerconfig.py from its working directory (tests/unit/test_flower_metrics.py
    runs that file as Flower does, with and without PER_TASK_FLOWER_METRICS); the ServiceMonitor drops
    any series still labelled by task."""
    docs = render()
    cm = one(docs, "ConfigMap", "-flower-celeryconfig")
    assert cm["data"]["flowerconfig.py"] == (CHART / "files" / "flowerconfig.py").read_text()
    assert _flower_metric_relabelings(docs) == [{"sourceLabels": ["task"], "regex": ".+", "action": "drop"}]
    own = {"action": "labeldrop", "regex": "pod"}
    kept = render({"flower": {"perTaskMetrics": True, "serviceMonitor": {"metricRelabelings": [own]}}})
    # Still mounted (its cheaper event handling), told to keep Flower's own metrics.
    assert one(kept, "ConfigMap", "-flower-celeryconfig")["data"]["flowerconfig.py"] == cm["data"]["flowerconfig.py"]
    assert _flower_metric_relabelings(kept) == [own]
    envs = [
        {
            e["name"]: e.get("value")
            for e in one(d, "Deployment", "-flower")["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        for d in (docs, kept)
    ]
    assert "PER_TASK_FLOWER_METRICS" not in envs[0] and envs[1]["PER_TASK_FLOWER_METRICS"] == "1"


def test_flower_auth_persistence_and_open_api_follow_the_values():
    docs = scenario_docs("everything")
    pod = one(docs, "Deployment", "-flower")["spec"]["template"]["spec"]
    env = _env(pod["containers"][0])
    assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"] == {"name": "flower-auth", "key": "basic-auth"}
    assert env["FLOWER_BROKER_API"]["valueFrom"]["secretKeyRef"]["key"] == "management-api"
    assert env["FLOWER_UNAUTHENTICATED_API"]["value"] == "true"
    pvc = one(docs, "PersistentVolumeClaim")
    assert {"name": "data", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}} in pod["volumes"]
    assert env["FLOWER_DB"]["value"] == "/data/flower.db"
    assert pod["containers"][0]["command"][-1] == "--url_prefix=flower"
    assert pod["priorityClassName"] == "monitoring" and pod["tolerations"][0]["key"] == "monitoring"


def test_deployments_run_non_root_with_limits_and_secrets_only_from_secrets():
    for scenario in ("everything", "redis"):
        for dep in of_kind(scenario_docs(scenario), "Deployment"):
            pod = dep["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
            assert pod["automountServiceAccountToken"] is False
            for c in pod["containers"]:
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
                assert sc["capabilities"]["drop"] == ["ALL"]
                assert c["resources"]["limits"] and c["resources"]["requests"]
                assert re.fullmatch(r"[\w./-]+:[\w.-]+", c["image"]) and not c["image"].endswith(":latest")
                for e in c.get("env", []):
                    if re.search(r"(URL|AUTH|_API|_ADDR)$", e["name"]) and e["name"] != "FLOWER_UNAUTHENTICATED_API":
                        assert "secretKeyRef" in e.get("valueFrom", {}), e


def test_pods_get_the_service_account_pull_secrets_and_pod_values():
    docs = scenario_docs("everything")
    sa = one(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert sa["metadata"]["annotations"] == {"example.com/role": "monitoring"}
    for dep in of_kind(docs, "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == sa["metadata"]["name"]
        assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    exporter = one(docs, "Deployment", "-exporter")["spec"]["template"]
    assert exporter["metadata"]["annotations"]["example.com/scrape"] == "no"
    assert exporter["metadata"]["annotations"]["checksum/config"]
    assert exporter["metadata"]["labels"]["tier"] == "monitoring"
    assert exporter["spec"]["priorityClassName"] == "monitoring"
    assert _env(exporter["spec"]["containers"][0])["TZ"]["value"] == "UTC"


def test_a_parent_charts_global_values_are_accepted_and_its_pull_secrets_used():
    docs = scenario_docs("subchart-global")
    for dep in of_kind(docs, "Deployment"):
        assert dep["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry-global"}]
    assert one(docs, "PrometheusRule")["metadata"]["name"] == "shop-celery-observability"


# --- Names ------------------------------------------------------------------------------------------


def test_a_53_character_release_name_is_cut_so_every_name_fits():
    docs = scenario_docs("long-release-name")
    full = one(docs, "PrometheusRule")["metadata"]["name"]
    assert len(full) == 48 and LONG_RELEASE.startswith(full)
    assert max(len(d["metadata"]["name"]) for d in of_kind(docs, "Service")) <= 63
    assert one(docs, "ScaledObject")["metadata"]["name"] == f"{full}-workers"


@pytest.mark.parametrize("release", ["obs", "celery-observability", "prod-celery-observability-eu", LONG_RELEASE])
def test_the_rules_derive_the_stamped_label_from_the_hpa_keda_makes(release):
    """KEDA's HPA is `keda-hpa-<ScaledObject>`, in the release namespace; the rules turn it into
    `<namespace>/<fullname>` (mixin/alerts/queues.py), which must be the value the monitors stamp."""
    docs = render({"autoscaling": {"enabled": True}}, release=release, namespace="team-a")
    so = one(docs, "ScaledObject")
    stamped = one(docs, "ServiceMonitor", "-exporter")["spec"]["endpoints"][0]["relabelings"][-1]["replacement"]
    joined = f"team-a/keda-hpa-{so['metadata']['name']}"
    match = re.fullmatch(f"(.*)/{CFG.autoscaling.hpa}", joined)
    full = one(docs, "PrometheusRule")["metadata"]["name"]
    assert match and f"{match.group(1)}/{match.group(2)}" == stamped == f"team-a/{full}"
    assert not re.fullmatch(CFG.autoscaling.hpa, "keda-hpa-some-other-app")


def test_fullname_override_and_name_override():
    docs = render({"fullnameOverride": "celery-mon"})
    assert {d["metadata"]["name"] for d in of_kind(docs, "Service")} == {"celery-mon-exporter", "celery-mon-flower"}
    assert (
        one(docs, "ServiceMonitor", "-exporter")["spec"]["endpoints"][0]["relabelings"][-1]["replacement"]
        == f"{NAMESPACE}/celery-mon"
    )
    docs = render({"nameOverride": "cobs"})
    assert one(docs, "PrometheusRule")["metadata"]["name"] == f"{NAME}-cobs"


# --- Broker kinds, KEDA -------------------------------------------------------------------------------


def test_keda_rabbitmq_counts_ready_and_unacked_messages_with_string_metadata():
    assert not of_kind(render(), "ScaledObject"), "autoscaling must be off by default"
    docs = scenario_docs("rabbitmq-keda")
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


def test_redis_broker_runs_a_pinned_redis_exporter_and_a_keda_redis_trigger():
    docs = scenario_docs("redis")
    c = _container(docs, "-redis-exporter")
    assert c["image"] == "oliver006/redis_exporter:v1.67.0"
    assert "--check-single-keys=db2=celery,db2=unacked" in c["args"]
    assert _env(c)["REDIS_ADDR"]["valueFrom"]["secretKeyRef"] == {"name": "celery-broker", "key": "url"}
    sm = one(docs, "ServiceMonitor", "-redis-exporter")
    assert sm["spec"]["endpoints"][0]["relabelings"][-2]["replacement"] == CFG.jobs.redis_broker
    assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "redis-exporter"
    so, ta = one(docs, "ScaledObject"), one(docs, "TriggerAuthentication")
    trigger = so["spec"]["triggers"][0]
    assert trigger["type"] == "redis" and trigger["metadata"] == {
        "address": "redis.broker.svc:6379",
        "listName": "celery",
        "listLength": "15",
        "databaseIndex": "2",
        "enableTLS": "false",
    }
    assert trigger["authenticationRef"]["name"] == ta["metadata"]["name"]
    assert ta["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "redis-auth", "key": "password"}]
    # The Redis dashboard, not RabbitMQ's.
    names = {d["metadata"]["name"] for d in of_kind(docs, "ConfigMap")}
    assert any(n.endswith("-dashboard-redis-broker") for n in names)
    assert not any(n.endswith("-dashboard-rabbitmq-broker") for n in names)
    default_names = {d["metadata"]["name"] for d in of_kind(render(), "ConfigMap")}
    assert not any(n.endswith("-dashboard-redis-broker") for n in default_names)


def test_an_existing_redis_exporter_is_scraped_where_it_runs():
    docs = scenario_docs("redis-own-exporter")
    assert not [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-redis-exporter")]
    sm = one(docs, "ServiceMonitor", "-redis-exporter")
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["broker"]}
    assert sm["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "redis-exporter"}}


def test_custom_secrets_are_wired_and_listed_in_the_notes():
    docs = scenario_docs("existing-secrets")
    for suffix in ("-exporter", "-flower"):
        refs = [e["valueFrom"]["secretKeyRef"] for e in _container(docs, suffix)["env"] if "valueFrom" in e]
        assert {"name": "prod-rabbitmq", "key": "amqp-url"} in refs
    assert one(docs, "TriggerAuthentication")["spec"]["secretTargetRef"][0] == {
        "parameter": "host",
        "name": "keda-rabbitmq",
        "key": "uri",
    }
    text = notes(SCENARIOS["existing-secrets"].values)
    for secret, key in (("prod-rabbitmq", "amqp-url"), ("flower-users", "users"), ("keda-rabbitmq", "uri")):
        assert re.search(rf"{secret}: key {key}\b", text), text
    assert "mgmt-api" in text


def test_notes_say_which_secret_must_exist_and_which_rules_apply():
    text = notes()
    assert "celery-broker: key url" in text and "before the pods start" in text
    assert "broker=none,exporter=true,flower=true,workers=true" in text
    assert "celery-exporter's view of the queues" in text
    assert "rules.enabled=false" in text
    assert "minReplicas is 0" in notes({"autoscaling": {"enabled": True, "minReplicas": 0}})


# --- Several releases ------------------------------------------------------------------------------------


def test_two_releases_in_two_namespaces_share_one_set_of_rules_and_dashboards():
    a, b = scenario_docs("team-a"), scenario_docs("team-b")
    assert len(of_kind(a + b, "PrometheusRule")) == 1
    dashboards = [d for d in of_kind(a + b, "ConfigMap") if d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert dashboards and {d["metadata"]["namespace"] for d in dashboards} == {"team-a"}
    stamped = {
        d["metadata"]["namespace"]: d["spec"]["endpoints"][0]["relabelings"][-1]["replacement"]
        for d in of_kind(a + b, "ServiceMonitor")
        if d["metadata"]["name"].endswith("-exporter")
    }
    assert stamped == {"team-a": "team-a/obs-celery-observability", "team-b": "team-b/obs-celery-observability"}
    assert "Rules: off in this release" in notes(SCENARIOS["team-b"].values, namespace="team-b")


def test_watchdog_is_off_unless_asked_for():
    def alerts(docs):
        return {r["alert"] for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"] if "alert" in r}

    assert "Watchdog" not in alerts(render())
    assert "Watchdog" in alerts(scenario_docs("everything"))


@pytest.mark.parametrize("feature", ["defaults", "everything"])
def test_client_dry_run_install_gives_the_rendered_objects(feature):
    """`helm install --dry-run=client` through Helm's SDK: no cluster is contacted (in-memory release
    storage), the release is assembled and its manifest holds exactly the rendered objects."""
    from helm_python import Chart, Config

    values = SCENARIOS[feature].values
    with Config(namespace="celery", storage_driver="memory", kubeconfig_path=str(REPO / "no-such-kubeconfig")) as cfg:
        release = cfg.install(Chart.load(str(CHART)), "obs", values, dry_run="client", namespace="celery")
    manifest = [d for d in yaml.safe_load_all(release["manifest"]) if d]
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, manifest)) == sorted(map(key, render(values)))
    assert release["chart_name"] == "celery-observability" and "port-forward" in release["notes"]


# --- Bad values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, where, says",
    [
        ({"autoscalling": {"enabled": True}}, "at ''", "'autoscalling' not allowed"),
        ({"autoscaling": {"maxReplicas": "ten"}}, "/autoscaling/maxReplicas", "want integer"),
        ({"dashboards": {"datasourceUid": "my prom"}}, "/dashboards/datasourceUid", "does not match"),
        ({"scrapeInterval": "30 seconds"}, "/scrapeInterval", "does not match"),
        ({"flower": {"persistence": {"enabled": "yes"}}}, "/flower/persistence/enabled", "want boolean"),
        ({"broker": {"kind": "kafka"}}, "/broker/kind", "value must be one of 'rabbitmq', 'redis'"),
        ({"broker": {"queues": ["a,b"]}}, "/broker/queues/0", "does not match"),
        ({"rules": {"additionalLabels": {"team-name": "x"}}}, "/rules/additionalLabels", "'team-name' not allowed"),
    ],
)
def test_bad_values_are_refused_by_the_schema_naming_the_value(values, where, says):
    """values.schema.json: Helm refuses a typo or a wrong type before rendering anything."""
    error = render_error(values)
    assert error and where in error and says in error, error


@pytest.mark.parametrize(
    "values, says",
    [
        (
            {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}},
            "autoscaling.minReplicas (5) must not exceed autoscaling.maxReplicas (2)",
        ),
        ({"fullnameOverride": "a" * 49}, "at most 48, so that"),
        ({"prometheusRule": {"enabled": False}}, "prometheusRule.enabled was renamed rules.enabled"),
        ({"grafana": {"dashboards": {"enabled": False}}}, "were renamed dashboards.*"),
        (
            {"broker": {"kind": "redis"}, "rabbitmq": {"serviceMonitor": {"enabled": True}}},
            'rabbitmq.serviceMonitor.enabled is for broker.kind rabbitmq, not "redis"',
        ),
        ({"redis": {"exporter": {"enabled": True}}}, 'are for broker.kind redis, not "rabbitmq"'),
        (
            {
                "broker": {"kind": "redis"},
                "redis": {"exporter": {"enabled": True}, "serviceMonitor": {"enabled": True}},
            },
            "enable one of redis.exporter.enabled",
        ),
        ({"broker": {"kind": "redis"}, "autoscaling": {"enabled": True}}, "autoscaling.redis.address"),
        ({"rules": {"runbookUrl": "https://runbooks.example.com/celery"}}, "has no {alert} placeholder"),
        ({"rules": {"disabled": {"CeleryQueueBaklog": True}}}, '"CeleryQueueBaklog" is not an alert of the chart'),
    ],
)
def test_values_that_would_break_the_release_fail_with_a_clear_message(values, says):
    error = render_error(values)
    assert error and says in error, error


# --- Packaging -------------------------------------------------------------------------------------


def test_chart_metadata_names_its_images_and_sources():
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert re.fullmatch(r"\d+\.\d+\.0", meta["version"]) and meta["version"] != "0.1.0"
    for image in (values["exporter"]["image"], values["flower"]["image"]):
        assert image["tag"] in meta["appVersion"]
        assert f"{image['repository']}:{image['tag']}" in meta["annotations"]["images"]
    assert meta["home"].startswith("https://") and meta["icon"].startswith("https://") and len(meta["sources"]) == 3
    ignored = (CHART / ".helmignore").read_text().split()
    assert "*.md" not in ignored and "README.md" not in ignored


def test_no_localhost_in_the_charts_files_and_templates():
    for path in list((CHART / "files").rglob("*")) + list((CHART / "templates").rglob("*")):
        if path.is_file():
            assert "localhost" not in path.read_text(encoding="utf-8"), path
