"""A small dict-based builder for Grafana dashboard JSON.

The JSON targets Grafana 11.x (schemaVersion 39) and uses only current panel types. Every panel
and every query names the datasource through the `datasource` variable, whose default is the
provisioned Prometheus (uid), so the files load unchanged through file provisioning (no `__inputs`,
no `${DS_PROMETHEUS}`).

Many deployments in one Grafana: every dashboard has the variables datasource, cluster, namespace
(both match everything, also series without the label) and one job variable per source (default:
the job name from mixin.config). Every selector carries them, and every aggregation keeps
`cluster` and `namespace` (scope_aggregations), so two deployments never add up.

Panels are placed left to right in the order they are given, wrapping at 24 columns, so a
dashboard module lists panels and their sizes and never computes coordinates itself.
"""

import re

from mixin import config
from mixin.queries import Queries

SCHEMA_VERSION = 39
GRID_COLUMNS = 24
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}
# Labels that tell deployments apart. Absent natively and under compose: `=~".*"` matches
# series without them, and aggregations by them then give one series, as before.
SCOPE_LABELS = ("cluster", "namespace")
SCOPE = ", ".join(f'{label}=~"${label}"' for label in SCOPE_LABELS)
# A metric each source always exposes, to list that source's jobs in its job variable.
JOB_METRICS = {
    "exporter": "celery_worker_up",
    "flower": "flower_worker_online",
    "worker": "celery_worker_pool_processes",
    "rabbitmq": "rabbitmq_identity_info",
    "rabbitmq_queues": "rabbitmq_detailed_queue_messages_ready",
    "app": "up",
}
_JOB_MATCHER = re.compile(r'\bjob="([^"]+)"')
_JOB_KEYS = {job: key for key, job in config.JOBS.items()}


def job_variable(key):
    """The name of the job variable of config.JOBS[key]: job_exporter, job_flower, ..."""
    return f"job_{key}"


def scoped(matchers):
    """config.SELECTORS text with job="x" turned into job=~"$job_<source>", plus the scope."""
    text = _JOB_MATCHER.sub(lambda m: f'job=~"${job_variable(_JOB_KEYS[m.group(1)])}"', matchers)
    return f"{text}, {SCOPE}"
# Panels whose query returns no series in a healthy system say so in their description, after
# this marker; tests/dashboard_queries.py reads it back for the live check.
EMPTY_BY_DESIGN = "Empty by design:"


def selector(source, *matchers):
    """The config.SELECTORS entry for source (scoped) plus extra matchers, in braces."""
    return QUERIES.sel(source, *matchers)


_AGGREGATION = re.compile(r"\b(sum|max|min|avg|count)\s*(?:by\s*\(([^)]*)\)\s*)?\((?!ALERTS)")


def scope_aggregations(expr):
    """Every sum/max/min/avg/count keeps cluster and namespace: `sum(x)` -> `sum by (cluster,
    namespace) (x)`, `sum by (le) (x)` -> `sum by (cluster, namespace, le) (x)`. Counting firing
    ALERTS stays one number for the selected scope."""
    def rewrite(match):
        labels = [label.strip() for label in (match.group(2) or "").split(",") if label.strip()]
        labels = [label for label in SCOPE_LABELS if label not in labels] + labels
        return f"{match.group(1)} by ({', '.join(labels)}) ("
    return _AGGREGATION.sub(rewrite, expr)


def target(expr, legend="", *, instant=False, table=False):
    """One Prometheus query; panel() gives it its refId."""
    return {
        "datasource": DATASOURCE,
        "expr": scope_aggregations(expr),
        "format": "table" if table else "time_series",
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
    }


def thresholds(base, *steps):
    """Absolute colour steps: thresholds("green", (0.8, "red"))."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def link(title, url):
    return {"targetBlank": True, "title": title, "url": url}


def override(field_name, **properties):
    return {
        "matcher": {"id": "byName", "options": field_name},
        # custom__cellOptions=... sets "custom.cellOptions"
        "properties": [{"id": key.replace("__", "."), "value": value}
                       for key, value in properties.items()],
    }


def value_mapping(mapping):
    """{value: (text, colour)} as a Grafana value mapping."""
    return [{
        "type": "value",
        "options": {str(value): {"color": color, "index": index, "text": text}
                    for index, (value, (text, color)) in enumerate(sorted(mapping.items()))},
    }]


def panel(kind, title, targets, *, w, h, description, unit="short", steps=None, links=(),
          options=None, custom=None, overrides=(), mappings=(), transformations=(),
          min=None, max=None, empty_by_design=None):
    if empty_by_design:
        description = f"{description} {EMPTY_BY_DESIGN} {empty_by_design}"
    defaults = {
        "color": {"mode": "thresholds" if steps else "palette-classic"},
        "links": list(links),
        "mappings": list(mappings),
        "thresholds": steps or thresholds("green"),
        "unit": unit,
    }
    if custom:
        defaults["custom"] = custom
    if min is not None:
        defaults["min"] = min
    if max is not None:
        defaults["max"] = max
    return {
        "datasource": DATASOURCE,
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
        "options": options or {},
        "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
        "title": title,
        "transformations": list(transformations),
        "type": kind,
    }


REDUCE_LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def timeseries(title, targets, *, threshold_line=False, w=12, h=8, legend_calcs=(), stack=False,
               **kw):
    """A line chart; threshold_line draws the colour steps as dashed lines; stack stacks series."""
    custom = {
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "drawStyle": "line",
        "fillOpacity": 60 if stack else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "thresholdsStyle": {"mode": "dashed" if threshold_line else "off"},
    }
    options = {
        "legend": {"calcs": list(legend_calcs), "displayMode": "table" if legend_calcs else "list",
                   "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel("timeseries", title, targets, w=w, h=h, custom=custom, options=options, **kw)


def stat(title, targets, *, w=4, h=4, graph=True, **kw):
    options = {
        "colorMode": "background",
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": REDUCE_LAST,
        "textMode": "auto",
    }
    return panel("stat", title, targets, w=w, h=h, options=options, **kw)


def gauge(title, targets, *, w=4, h=4, **kw):
    options = {"orientation": "auto", "reduceOptions": REDUCE_LAST,
               "showThresholdLabels": False, "showThresholdMarkers": True}
    return panel("gauge", title, targets, w=w, h=h, options=options, **kw)


def bargauge(title, targets, *, w=12, h=8, **kw):
    options = {"displayMode": "gradient", "orientation": "horizontal",
               "reduceOptions": REDUCE_LAST, "showUnfilled": True}
    return panel("bargauge", title, targets, w=w, h=h, options=options, **kw)


def table(title, targets, *, w=24, h=8, columns=None, hide=("Time",), sort_by=None, **kw):
    """Instant table queries merged on their labels; columns renames `Value #<refId>`; rows are
    sortable by any column (click its header), sort_by=(column, descending) sets the default."""
    organize = {"excludeByName": {name: True for name in hide}, "renameByName": columns or {}}
    transformations = [{"id": "merge", "options": {}}, {"id": "organize", "options": organize}]
    options = {"cellHeight": "sm", "showHeader": True}
    if sort_by:
        options["sortBy"] = [{"desc": sort_by[1], "displayName": sort_by[0]}]
    return panel("table", title, targets, w=w, h=h, options=options,
                 transformations=transformations, **kw)


def query_variable(name, label, query, *, multi=True, include_all=True):
    """A Prometheus query variable; query is label_values(series selector, label)."""
    variable = {
        "datasource": DATASOURCE,
        "definition": query,
        "hide": 0,
        "includeAll": include_all,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,  # on time range change, so new workers and queues appear
        "regex": "",
        "sort": 1,
        "type": "query",
    }
    if include_all:
        variable["allValue"] = ".*"
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def datasource_variable():
    return {
        "current": {"selected": True, "text": "Prometheus", "value": config.DATASOURCE_UID},
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": DATASOURCE_VARIABLE,
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "type": "datasource",
    }


def scope_variables():
    """cluster, then namespace within it; "All" (.*) also matches series without the label."""
    cluster = query_variable("cluster", "Cluster", "label_values(up, cluster)")
    namespace = query_variable("namespace", "Namespace", 'label_values(up{cluster=~"$cluster"}, namespace)')
    return [cluster, namespace]


def job_variables(panels, variables):
    """One variable per source whose job the queries use, defaulting to config.JOBS."""
    text = repr([p.get("targets") for p in panels] + [v.get("definition") for v in variables])
    result = []
    for key, job in config.JOBS.items():
        name = job_variable(key)
        if not re.search(rf"\${name}\b", text):
            continue
        variable = query_variable(name, f"Job ({key})",
                                  f"label_values({JOB_METRICS.get(key, 'up')}{{{SCOPE}}}, job)",
                                  multi=False, include_all=False)
        variable["current"] = {"selected": True, "text": job, "value": job}
        variable["hide"] = 0
        result.append(variable)
    return result


def flow(panels):
    """Give panels ids and grid positions, left to right, wrapping at 24 columns."""
    x = y = row_height = 0
    for panel_id, item in enumerate(panels, start=1):
        grid = item["gridPos"]
        if x + grid["w"] > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        grid.update(x=x, y=y)
        item["id"] = panel_id
        x += grid["w"]
        row_height = max(row_height, grid["h"])
    return panels


def dashboard(key, title, description, panels, *, variables=(), links=(), tags=("celery",)):
    return {
        "description": description,
        "editable": False,
        "graphTooltip": 1,  # shared crosshair
        "links": [{"asDropdown": False, "icon": "external link", "includeVars": False,
                   "keepTime": True, "tags": ["celery"], "targetBlank": False,
                   "title": "Dashboards", "type": "dashboards"}]
        + [dict(item, icon="external link", type="link", tags=[]) for item in links],
        "panels": flow(panels),
        "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": list(tags),
        "templating": {"list": [datasource_variable(), *scope_variables(),
                                *job_variables(panels, variables), *variables]},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": config.DASHBOARD_UIDS[key],
        "version": 1,
    }


def flower(path=""):
    return config.FLOWER_URL + path


# Expressions come from mixin/queries.py, the same code the alert rules use; signal panels pass the
# alert's own window so they show the signal exactly as the alert computes it.
RATE = "$__rate_interval"
# The same expressions over the dashboards' scoped selectors (job, cluster and namespace variables).
QUERIES = Queries({source: scoped(matchers) for source, matchers in config.SELECTORS.items()})


def task_rate(counter, *matchers, by="", window=RATE, offset=""):
    return QUERIES.task_rate(counter, window, *matchers, by=by, offset=offset)


def finished_rate(*matchers, by="", window=RATE, offset=""):
    return QUERIES.finished_rate(window, *matchers, by=by, offset=offset)


def success_ratio(*matchers, by="", window=RATE):
    return QUERIES.success_ratio(window, *matchers, by=by)


def runtime_quantile(quantile, *matchers, by=""):
    return QUERIES.runtime_quantile(quantile, RATE, *matchers, by=by)


def worker_cpu_ratio(*matchers):
    """As CeleryWorkerCpuHigh computes it: over worker_cpu_window, per worker."""
    return QUERIES.worker_cpu_ratio(config.THRESHOLDS["worker_cpu_window"], *matchers)


def worker_memory(*matchers):
    return QUERIES.worker_memory(*matchers)


def worker_memory_growth(*matchers):
    """As CeleryWorkerMemoryGrowing computes it: the trend over worker_memory_window."""
    return QUERIES.worker_memory_growth(config.THRESHOLDS["worker_memory_window"], *matchers)


def events_lost_ratio(*matchers):
    """As CeleryEventsLost computes it: per monitor (job), over events_lost_window."""
    return QUERIES.events_lost_ratio(config.THRESHOLDS["events_lost_window"], *matchers)


def queue_depth(*matchers, by="queue"):
    """Ready messages in the task queues, as CeleryQueueBacklog reads them (RabbitMQ)."""
    return QUERIES.queue_depth(*matchers, by=by)


def cpu_steps():
    return thresholds("green", (config.THRESHOLDS["worker_cpu_ratio_max"], "red"))


def success_steps():
    return thresholds("red", (config.THRESHOLDS["success_ratio_min"], "green"))
