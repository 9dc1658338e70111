"""A small dict-based builder for Grafana dashboard JSON.

The JSON targets Grafana 11.x (schemaVersion 39) and uses only current panel types. Every panel
and every query names the datasource through the `datasource` variable, whose default is the
provisioned Prometheus (uid), so the files load unchanged through file provisioning (no `__inputs`,
no `${DS_PROMETHEUS}`).

Widgets (stat, timeseries, table, ...) are plain functions; the Board (below) binds a Config: its
scoped selectors, the shared queries, thresholds, links, and the finished dashboard.

Panels are placed left to right in the order they are given, wrapping at 24 columns, so a
dashboard module lists panels and their sizes and never computes coordinates itself.
"""

import re

from mixin.config import Config
from mixin.queries import EXPORTER_WORKER_UP, FLOWER_WORKER_ONLINE, POOL_PROCESSES, Queries, RabbitMQ, selectors
from mixin.records import Recorded

SCHEMA_VERSION = 39
GRID_COLUMNS = 24
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}
# A metric each source always exposes, to list that source's jobs in its job variable.
JOB_METRICS = {
    "exporter": EXPORTER_WORKER_UP,
    "flower": FLOWER_WORKER_ONLINE,
    "worker": POOL_PROCESSES,
    "rabbitmq": RabbitMQ.IDENTITY,
    "rabbitmq_queues": RabbitMQ.QUEUE_READY,
    "app": "up",  # and the Redis broker's: the Overview queries both brokers, where no Redis runs too
}
_JOB_MATCHER = re.compile(r'\bjob="([^"]+)"')


def job_variable(key):
    """The name of the job variable of cfg.jobs.<key>: job_exporter, job_flower, ..."""
    return f"job_{key}"


def has_source(cfg: Config, key):
    """Whether the Config has the source behind job variable `key`."""
    sources = cfg.sources
    return {
        "exporter": sources.exporter,
        "flower": sources.flower,
        "worker": sources.worker_metrics,
        "app": sources.app,
        "rabbitmq": "rabbitmq" in sources.brokers,
        "rabbitmq_queues": "rabbitmq" in sources.brokers,
        "redis_broker": "redis" in sources.brokers,
    }.get(key, True)


# Panels whose query returns no series in a healthy system say so in their description, after
# this marker; tests/dashboard_queries.py reads it back for the live check.
EMPTY_BY_DESIGN = "Empty by design:"


_AGGREGATION = re.compile(r"\b(sum|max|min|avg|count)\s*(?:by\s*\(([^)]*)\)\s*)?\((?!ALERTS)")


def scope_aggregations(expr, scope_labels):
    """Every sum/max/min/avg/count keeps the scope labels (cluster, namespace): `sum(x)` -> `sum by
    (cluster, namespace) (x)`, `sum by (le) (x)` -> `sum by (cluster, namespace, le) (x)`. Counting
    firing ALERTS stays one number for the selected scope."""

    def rewrite(match):
        labels = [label.strip() for label in (match.group(2) or "").split(",") if label.strip()]
        labels = [label for label in scope_labels if label not in labels] + labels
        return f"{match.group(1)} by ({', '.join(labels)}) ("

    return _AGGREGATION.sub(rewrite, expr)


def target(expr, legend="", *, instant=False, table=False):
    """One Prometheus query; panel() gives it its refId."""
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "format": "table" if table else "time_series",
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
    }


def thresholds(base, *steps):
    """Absolute colour steps: thresholds("green", (0.8, "red"))."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}] + [{"color": color, "value": value} for value, color in steps],
    }


def link(title, url):
    return {"targetBlank": True, "title": title, "url": url}


def override(field_name, **properties):
    return {
        "matcher": {"id": "byName", "options": field_name},
        # custom__cellOptions=... sets "custom.cellOptions"
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()],
    }


def value_mapping(mapping):
    """{value: (text, colour)} as a Grafana value mapping."""
    return [
        {
            "type": "value",
            "options": {
                str(value): {"color": color, "index": index, "text": text}
                for index, (value, (text, color)) in enumerate(sorted(mapping.items()))
            },
        }
    ]


def panel(
    kind,
    title,
    targets,
    *,
    w,
    h,
    description,
    unit="short",
    steps=None,
    links=(),
    options=None,
    custom=None,
    overrides=(),
    mappings=(),
    transformations=(),
    minimum=None,
    maximum=None,
    empty_by_design=None,
):
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
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
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


def timeseries(title, targets, *, threshold_line=False, w=12, h=8, legend_calcs=(), stack=False, **kw):
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
        "legend": {
            "calcs": list(legend_calcs),
            "displayMode": "table" if legend_calcs else "list",
            "placement": "bottom",
            "showLegend": True,
        },
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
    options = {
        "orientation": "auto",
        "reduceOptions": REDUCE_LAST,
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
    }
    return panel("gauge", title, targets, w=w, h=h, options=options, **kw)


def bargauge(title, targets, *, w=12, h=8, **kw):
    options = {
        "displayMode": "gradient",
        "orientation": "horizontal",
        "reduceOptions": REDUCE_LAST,
        "showUnfilled": True,
    }
    return panel("bargauge", title, targets, w=w, h=h, options=options, **kw)


def heatmap(title, targets, *, w=12, h=8, unit="s", **kw):
    """Buckets of a histogram over time (targets in heatmap format: `sum by (le) (rate(..._bucket))`)."""
    options = {
        "calculate": False,
        "cellGap": 1,
        "color": {
            "exponent": 0.5,
            "fill": "dark-orange",
            "mode": "scheme",
            "reverse": False,
            "scale": "exponential",
            "scheme": "Oranges",
            "steps": 64,
        },
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
        "yAxis": {"axisPlacement": "left", "unit": unit},
    }
    for t in targets:
        t["format"] = "heatmap"
    return panel("heatmap", title, targets, w=w, h=h, options=options, **kw)


def table(title, targets, *, w=24, h=8, columns=None, hide=("Time",), sort_by=None, **kw):
    """Instant table queries merged on their labels; columns renames `Value #<refId>`; rows are
    sortable by any column (click its header), sort_by=(column, descending) sets the default."""
    organize = {"excludeByName": {name: True for name in hide}, "renameByName": columns or {}}
    transformations = [{"id": "merge", "options": {}}, {"id": "organize", "options": organize}]
    options = {"cellHeight": "sm", "showHeader": True}
    if sort_by:
        options["sortBy"] = [{"desc": sort_by[1], "displayName": sort_by[0]}]
    return panel("table", title, targets, w=w, h=h, options=options, transformations=transformations, **kw)


def query_variable(name, label, query, *, multi=True, include_all=True):
    """A Prometheus query variable; query is label_values(series selector, label)."""
    variable = {
        "datasource": DATASOURCE,
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


# Expressions come from mixin/queries.py, the same code the alert rules use; signal panels pass the
# alert's own window so they show the signal exactly as the alert computes it.
RATE = "$__rate_interval"


class Board:
    """What a dashboard needs from the Config: scoped selectors, the shared queries over them,
    thresholds, links, and the finished dashboard with only the panels its sources feed.

    Many deployments in one Grafana: every dashboard has the variables datasource, cluster,
    namespace (both match everything, also series without the label) and one job variable per
    source (default: the Config's job name). Every selector carries them, and every aggregation
    keeps the scope labels (scope_aggregations), so two deployments never add up.
    """

    def __init__(self, cfg: Config):
        self.cfg, self.t = cfg, cfg.thresholds
        labels = cfg.labels
        self.scope_labels = [labels.cluster, labels.namespace]
        self.scope = f'{labels.cluster}=~"$cluster", {labels.namespace}=~"$namespace"'
        self._job_keys = {getattr(cfg.jobs, key): key for key in type(cfg.jobs).model_fields}
        self.q = Queries(cfg, {source: self.scoped(m) for source, m in selectors(cfg).items()})
        # Panels that aggregate many series read recording rules (mixin/records.py) through these.
        self.r = Recorded(self.q)

    def scoped(self, matchers):
        """Selector text with job="x" turned into job=~"$job_<source>", plus the scope."""
        text = _JOB_MATCHER.sub(lambda m: f'job=~"${job_variable(self._job_keys[m.group(1)])}"', matchers)
        return f"{text}, {self.scope}"

    def selector(self, source, *matchers):
        """The source's scoped selector plus extra matchers, in braces."""
        return self.q.sel(source, *matchers)

    def flower(self, path=""):
        return self.cfg.urls.flower + path

    def flower_links(self, *pairs):
        """link(title, Flower URL + path) for each (title, path), or none without Flower."""
        if not (self.cfg.sources.flower and self.cfg.urls.flower):
            return []
        return [link(title, self.flower(path)) for title, path in pairs]

    # --- signal queries, over the alert's own window --------------------------------------------
    def task_rate(self, counter, *matchers, by="", window=RATE, offset=""):
        return self.q.task_rate(counter, window, *matchers, by=by, offset=offset)

    def finished_rate(self, *matchers, by="", window=RATE, offset=""):
        return self.q.finished_rate(window, *matchers, by=by, offset=offset)

    def success_ratio(self, *matchers, by="", window=RATE):
        return self.q.success_ratio(window, *matchers, by=by)

    def runtime_quantile(self, quantile, *matchers, by=""):
        return self.q.runtime_quantile(quantile, RATE, *matchers, by=by)

    def worker_cpu_ratio(self, *matchers):
        """As CeleryWorkerCpuHigh computes it: over worker_cpu_window, per worker."""
        return self.q.worker_cpu_ratio(self.t.worker_cpu_window, *matchers)

    def worker_memory(self, *matchers):
        return self.q.worker_memory(*matchers)

    def worker_memory_growth(self, *matchers):
        """As CeleryWorkerMemoryGrowing computes it: the trend over worker_memory_window."""
        return self.q.worker_memory_growth(self.t.worker_memory_window, *matchers)

    def events_lost_ratio(self, *matchers):
        """As CeleryEventsLost computes it: per monitor (job), over events_lost_window."""
        return self.q.events_lost_ratio(self.t.events_lost_window, *matchers)

    def queue_depth(self, *matchers, by="queue"):
        """Ready messages in the task queues, as CeleryQueueBacklog reads them."""
        return self.q.queue_depth(*matchers, by=by)

    def cpu_steps(self):
        return thresholds("green", (self.t.worker_cpu_ratio_max, "red"))

    def success_steps(self):
        return thresholds("red", (self.t.success_ratio_min, "green"))

    # --- the dashboard --------------------------------------------------------------------------
    def datasource_variable(self):
        uid = self.cfg.dashboards.datasource_uid
        return {
            "current": {"selected": True, "text": "Prometheus", "value": uid},
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

    def scope_variables(self):
        """cluster, then namespace within it; "All" (.*) also matches series without the label."""
        cluster, namespace = self.scope_labels
        return [
            query_variable("cluster", "Cluster", f"label_values(up, {cluster})"),
            query_variable("namespace", "Namespace", f'label_values(up{{{cluster}=~"$cluster"}}, {namespace})'),
        ]

    def job_variables(self, panels, variables):
        """One variable per source whose job the queries use, defaulting to the Config's job."""
        text = repr([p.get("targets") for p in panels] + [v.get("query") for v in variables])
        result = []
        for job, key in self._job_keys.items():
            name = job_variable(key)
            if not re.search(rf"\${name}\b", text):
                continue
            metric = JOB_METRICS.get(key, "up")
            variable = query_variable(
                name, f"Job ({key})", f"label_values({metric}{{{self.scope}}}, job)", multi=False, include_all=False
            )
            variable["current"] = {"selected": True, "text": job, "value": job}
            result.append(variable)
        return result

    def fed(self, item):
        """Whether every job variable a panel or variable uses belongs to a source the Config has."""
        used = re.findall(r"\$job_(\w+)", repr(item))
        return all(has_source(self.cfg, key) for key in used)

    def dashboard(self, key, title, description, panels, *, variables=(), links=(), tags=None):
        panels = [p for p in panels if p["targets"] and self.fed(p)]  # no query: its source is absent
        variables = [v for v in variables if self.fed(v)]
        for item in panels:
            for t in item["targets"]:
                t["expr"] = scope_aggregations(t["expr"], self.scope_labels)
        return {
            "description": f"{description} Generated by `python -m mixin` (mixin/dashboards/); do not edit.",
            "editable": False,
            "graphTooltip": 1,  # shared crosshair
            "links": [
                {
                    "asDropdown": False,
                    "icon": "external link",
                    "includeVars": False,
                    "keepTime": True,
                    "tags": list(self.cfg.dashboards.tags),
                    "targetBlank": False,
                    "title": "Dashboards",
                    "type": "dashboards",
                }
            ]
            + [dict(item, icon="external link", type="link", tags=[]) for item in links],
            "panels": flow(panels),
            "refresh": self.cfg.dashboards.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "tags": [*self.cfg.dashboards.tags, "generated", *(tags or ())],
            "templating": {
                "list": [
                    self.datasource_variable(),
                    *self.scope_variables(),
                    *self.job_variables(panels, variables),
                    *variables,
                ]
            },
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": title,
            "uid": self.cfg.dashboards.uids[key],
            "version": 1,
        }
