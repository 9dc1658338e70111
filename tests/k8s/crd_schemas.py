"""JSON schemas of the Prometheus Operator and KEDA custom resources, from the cloudcoil model
packages (generated from the projects' CRDs), made strict: an unknown field anywhere is an error,
as `kubectl apply --validate=strict` would report it."""

import functools

import jsonschema

KINDS = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): ("prometheus_operator", "v1"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("prometheus_operator", "v1"),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("prometheus_operator", "v1"),
    ("keda.sh/v1alpha1", "ScaledObject"): ("keda", "v1alpha1"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): ("keda", "v1alpha1"),
}


def _strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            _strict(v)
    elif isinstance(node, list):
        for v in node:
            _strict(v)
    return node


@functools.lru_cache(maxsize=None)
def validator(api_version, kind):
    import importlib

    package, version = KINDS[(api_version, kind)]
    module = importlib.import_module(f"cloudcoil.models.{package}.{version}")
    schema = _strict(getattr(module, kind).model_json_schema(by_alias=True, mode="validation"))
    return jsonschema.Draft202012Validator(schema)


def errors(doc):
    v = validator(doc["apiVersion"], doc["kind"])
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]
