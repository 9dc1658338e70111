"""Helpers of the chart tests: render charts/celery-observability with Helm's own engine
(helm-python-sdk bundles Helm's Go SDK, no helm binary and no cluster) and validate the result."""
import copy
import functools
import json
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "celery-observability"
NAME, NAMESPACE = "obs", "celery"

# Each optional feature on, one at a time; `defaults` is the chart as installed without values.
FEATURES = {
    "defaults": {},
    "rabbitmq": {"rabbitmq": {"serviceMonitor": {"enabled": True, "namespace": "broker"}}},
    "autoscaling": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 7,
                                     "cooldownPeriod": 120, "messagesPerReplica": 15}},
    "flower-persistence": {"flower": {"persistence": {"enabled": True, "storageClassName": "standard"}}},
    "flower-auth": {"flower": {"basicAuth": {"existingSecret": "flower-auth"}},
                    "broker": {"managementApiKey": "management-api"}},
    "flower-open-api": {"flower": {"unauthenticatedApi": True}},
    "datasource": {"grafana": {"datasourceUid": "my-prom",
                               "dashboards": {"annotations": {"grafana_folder": "Celery"}}}},
    "release-label": {"monitorLabels": {"release": "monitoring"},
                      "workers": {"podMonitor": {"namespaces": ["apps"]}}},
}
# Every feature at once, too.
ALL = {}
for _v in FEATURES.values():
    def _merge(dst, src):
        for k, v in src.items():
            if isinstance(v, dict):
                _merge(dst.setdefault(k, {}), v)
            else:
                dst[k] = v
    _merge(ALL, copy.deepcopy(_v))
FEATURES["everything"] = ALL


def _key(values):
    return json.dumps(values, sort_keys=True)


@functools.lru_cache(maxsize=None)
def _render(key):
    from helm_python import Chart

    out = Chart.load(str(CHART)).render(json.loads(key), name=NAME, namespace=NAMESPACE, is_install=True)
    return tuple(sorted(out.items()))


def render_files(values=None):
    return dict(_render(_key(values or {})))


def render(values=None):
    """Every rendered object (NOTES.txt left out)."""
    docs = []
    for path, text in render_files(values).items():
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def render_error(values):
    from helm_python import Chart

    try:
        Chart.load(str(CHART)).render(values, name=NAME, namespace=NAMESPACE, is_install=True)
    except Exception as exc:  # the SDK's HelmRenderError
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
