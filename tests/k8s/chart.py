"""Helpers of the chart tests: render charts/celery-observability with Helm's own engine
(helm-python-sdk bundles Helm's Go SDK, no helm binary and no cluster), the scenarios of the render
matrix, and validators (Kubernetes' schemas in-process, promtool on the extracted rules).

Renders and validators are cached per process (pytest-xdist runs each module's tests in its own
workers), so a scenario is rendered once however many tests read it."""

import atexit
import copy
import functools
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "celery-observability"
NAME, NAMESPACE = "obs", "celery"
# Kubernetes versions every scenario is validated for.
K8S_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0")
# 53 characters, Helm's longest release name; it does not contain the chart's name.
LONG_RELEASE = "payments-production-europe-west1-primary-workers-blue"
assert len(LONG_RELEASE) == 53


@dataclass(frozen=True)
class Scenario:
    values: dict = field(default_factory=dict)
    release: str = NAME
    namespace: str = NAMESPACE
    # Rendered as the dependency of a parent chart, with these values of the parent (global, ...).
    parent: dict | None = None

    @property
    def key(self):
        return json.dumps([self.values, self.release, self.namespace, self.parent], sort_keys=True)


KEDA = {"enabled": True, "minReplicas": 2, "maxReplicas": 7, "cooldownPeriod": 120, "messagesPerReplica": 15}
REDIS = {
    "broker": {"kind": "redis"},
    "redis": {"db": 2, "exporter": {"enabled": True}},
    "autoscaling": {**KEDA, "redis": {"address": "redis.broker.svc:6379", "passwordSecret": "redis-auth"}},
}
EVERYTHING = {
    "nameOverride": "celery-obs",
    "commonLabels": {"team": "payments"},
    "imagePullSecrets": ["regcred", {"name": "mirror"}],
    "serviceAccount": {"annotations": {"example.com/role": "monitoring"}},
    "monitorLabels": {"release": "monitoring"},
    "broker": {"managementApiKey": "management-api", "queues": ["celery", "priority"]},
    "rules": {
        "runbookUrl": "https://runbooks.example.com/celery/{alert}",
        "grafanaUrl": "https://grafana.example.com",
        "flowerUrl": "https://flower.example.com",
        "additionalLabels": {"team": "payments"},
        "additionalAnnotations": {"owner": "payments"},
        "disabled": {"CeleryThroughputBelowBaseline": True},
    },
    "watchdog": {"enabled": True},
    "dashboards": {"datasourceUid": "my-prom", "annotations": {"grafana_folder": "Celery"}},
    "exporter": {
        "extraArgs": ["--queue-metrics-interval=20"],
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "podAnnotations": {"example.com/scrape": "no"},
        "podLabels": {"tier": "monitoring"},
        "priorityClassName": "monitoring",
        "serviceMonitor": {
            "relabelings": [{"action": "replace", "targetLabel": "team", "replacement": "payments"}],
            "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "python_gc_.*"}],
        },
    },
    "flower": {
        "basicAuth": {"existingSecret": "flower-auth"},
        "unauthenticatedApi": True,
        "persistence": {"enabled": True, "storageClassName": "standard"},
        "extraArgs": ["--url_prefix=flower"],
        "priorityClassName": "monitoring",
        "tolerations": [{"key": "monitoring", "operator": "Exists", "effect": "NoSchedule"}],
    },
    "workers": {"podMonitor": {"namespaces": ["apps"]}},
    "rabbitmq": {"serviceMonitor": {"enabled": True, "namespace": "broker"}},
    "autoscaling": KEDA,
}

# The render matrix: every scenario renders, lints strictly, validates for K8S_VERSIONS and against
# the CRD schemas, and its extracted rules pass promtool.
SCENARIOS = {
    "defaults": Scenario(),
    "team-a": Scenario(
        {"rabbitmq": {"serviceMonitor": {"enabled": True}}, "autoscaling": {"enabled": True}}, namespace="team-a"
    ),
    # The same release name in a second namespace: rules and dashboards stay with team-a's release.
    "team-b": Scenario(
        {
            "rabbitmq": {"serviceMonitor": {"enabled": True}},
            "autoscaling": {"enabled": True},
            "rules": {"enabled": False},
            "dashboards": {"enabled": False},
        },
        namespace="team-b",
    ),
    "redis": Scenario(REDIS),
    "redis-own-exporter": Scenario(
        {"broker": {"kind": "redis"}, "redis": {"serviceMonitor": {"enabled": True, "namespace": "broker"}}}
    ),
    "existing-secrets": Scenario(
        {
            "broker": {"existingSecret": "prod-rabbitmq", "urlKey": "amqp-url", "managementApiKey": "mgmt-api"},
            "flower": {"basicAuth": {"existingSecret": "flower-users", "key": "users"}},
            "rabbitmq": {"serviceMonitor": {"enabled": True}},
            "autoscaling": {"enabled": True, "existingSecret": "keda-rabbitmq", "hostKey": "uri"},
        }
    ),
    "rabbitmq-keda": Scenario(
        {"rabbitmq": {"serviceMonitor": {"enabled": True, "namespace": "broker"}}, "autoscaling": KEDA}
    ),
    "rabbitmq-no-keda": Scenario({"rabbitmq": {"serviceMonitor": {"enabled": True, "namespace": "broker"}}}),
    # Workers in apps, RabbitMQ in broker, the exporter and Flower in the release's namespace.
    "split-namespaces": Scenario(
        {
            "workers": {"podMonitor": {"namespaces": ["apps"]}},
            "rabbitmq": {"serviceMonitor": {"enabled": True, "namespace": "broker"}},
        }
    ),
    "no-flower": Scenario({"flower": {"enabled": False}}),
    "no-worker-metrics": Scenario({"workers": {"podMonitor": {"enabled": False}}}),
    "long-release-name": Scenario(
        {
            "rabbitmq": {"serviceMonitor": {"enabled": True}},
            "autoscaling": {"enabled": True},
            "broker": {"kind": "rabbitmq"},
        },
        release=LONG_RELEASE,
    ),
    "subchart-global": Scenario(
        {"autoscaling": {"enabled": True}},
        release="shop",
        parent={"global": {"imagePullSecrets": ["registry-global"], "environment": "prod"}},
    ),
    "everything": Scenario(EVERYTHING),
}


def merged(*dicts):
    out = {}
    for d in dicts:
        for k, v in copy.deepcopy(d).items():
            out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@functools.lru_cache(maxsize=None)
def parent_chart():
    """A parent chart that has the chart as its dependency (charts/celery-observability)."""
    root = Path(tempfile.mkdtemp(prefix="celery-obs-parent-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "shop",
                "version": "1.0.0",
                "type": "application",
                "dependencies": [
                    {
                        "name": "celery-observability",
                        "version": yaml.safe_load((CHART / "Chart.yaml").read_text())["version"],
                    }
                ],
            }
        )
    )
    (root / "values.yaml").write_text("{}\n")
    (root / "templates").mkdir()
    shutil.copytree(CHART, root / "charts" / "celery-observability", ignore=shutil.ignore_patterns("examples"))
    return root


def chart_and_values(s: Scenario):
    if s.parent is None:
        return CHART, s.values
    return parent_chart(), merged(s.parent, {"celery-observability": s.values})


@functools.lru_cache(maxsize=None)
def _render(key):
    from helm_python import Chart

    values, release, namespace, parent = json.loads(key)
    path, vals = chart_and_values(Scenario(values, release, namespace, parent))
    out = Chart.load(str(path)).render(vals, name=release, namespace=namespace, is_install=True)
    return tuple(sorted(out.items()))


def render_files(values=None, release=NAME, namespace=NAMESPACE):
    return dict(_render(Scenario(values or {}, release, namespace).key))


def docs_of(files):
    docs = []
    for path, text in files.items():
        if path.endswith(".yaml"):
            docs += [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d]
    return docs


def render(values=None, release=NAME, namespace=NAMESPACE):
    """Every rendered object (NOTES.txt left out)."""
    return docs_of(render_files(values, release, namespace))


@functools.lru_cache(maxsize=None)
def _scenario_docs(name):
    return tuple(docs_of(dict(_render(SCENARIOS[name].key))))


def scenario_docs(name):
    return copy.deepcopy(list(_scenario_docs(name)))


def notes(values=None, release=NAME, namespace=NAMESPACE):
    return next(t for p, t in render_files(values, release, namespace).items() if p.endswith("NOTES.txt"))


def render_error(values, release=NAME, namespace=NAMESPACE):
    from helm_python import Chart

    try:
        Chart.load(str(CHART)).render(values, name=release, namespace=namespace, is_install=True)
    except Exception as exc:  # the SDK's HelmRenderError / HelmValuesError
        return str(exc)
    return None


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name_suffix=""):
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"{kind} *{name_suffix}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def run(*args, cwd=REPO, timeout=300):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd)


# --- Kubernetes' own schemas, in-process ------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _definitions(version):
    from kubernetes_validate import utils

    return utils.schema_contents(f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version)


@functools.lru_cache(maxsize=None)
def k8s_validator(version, api_version, kind):
    """kubernetes-validate's strict validator (as `kubernetes-validate --strict -k VERSION` builds it),
    built once per kind and version."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = f"kubernetes-json-schema/v{version}-local-strict/{kind.lower()}-{group}.json"
    schema = utils.schema_contents(path, version)
    registry = Resource.from_contents(_definitions(version)) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def k8s_errors(doc, version):
    v = k8s_validator(version, doc["apiVersion"], doc["kind"])
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


# --- Rules -------------------------------------------------------------------------------------------


def rule_spec(docs):
    """spec of the rendered PrometheusRule (None when the release renders none)."""
    rules = of_kind(docs, "PrometheusRule")
    assert len(rules) <= 1
    return rules[0]["spec"] if rules else None


def write_rules(spec, path):
    """spec written as a Prometheus rule file."""
    path = Path(path)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
