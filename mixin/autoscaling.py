"""Alert adjustments of the kubernetes profile for workers autoscaled by KEDA.

Under autoscaling a backlog is how more workers get started, and a scale-down stops workers on
purpose, so three alerts change (the standard and fast profiles keep theirs):
- CeleryQueueBacklog, CeleryQueueGrowing: silent while a workers' HorizontalPodAutoscaler made by
  KEDA (`keda-hpa-<ScaledObject>`, as the chart names it) runs below its maximum replicas; they fire
  once the workers are at their maximum (their `for` counts from then). Without such an HPA in
  kube-state-metrics they behave as before.
- CeleryWorkerDown: only a worker that vanished while online (killed: Flower never got its
  worker-offline event); a worker that shut down cleanly (worker-offline, Flower's 0) is not down.
- CeleryWorkerHostDown: not for a host whose worker Flower saw shut down cleanly (the exporter
  reports 0 for it either way until it purges it).
"""
from dataclasses import replace

from mixin import config
from mixin.queries import Queries

# The HPA KEDA creates for the chart's ScaledObject `<release fullname>-workers`.
KEDA_HPA = 'horizontalpodautoscaler=~"keda-hpa-.*celery-observability.*-workers"'
HPA_KEYS = "namespace, horizontalpodautoscaler"
HPA_CURRENT = f"kube_horizontalpodautoscaler_status_current_replicas{{{KEDA_HPA}}}"
HPA_MAX = f"kube_horizontalpodautoscaler_spec_max_replicas{{{KEDA_HPA}}}"
SCALING_UP = f"{HPA_CURRENT} < on ({HPA_KEYS}) {HPA_MAX}"


def adjust(alerts, t, q=None):
    """The profile's Alert list with the autoscaling-aware expressions."""
    q = q or Queries()
    online = q.flower_worker_online()
    vanished = t["worker_vanished_window"]
    clean_offline = (f'label_replace(last_over_time({online}[{vanished}]) == 0, '
                     f'"hostname", "$1", "worker", ".+@(.+)")')
    out = []
    for a in alerts:
        if a.name in ("CeleryQueueBacklog", "CeleryQueueGrowing"):
            a = replace(a, expr=f"({a.expr})\nunless on ()\n({SCALING_UP})",
                        when=f"{a.when}, and the autoscaled workers are at their maximum replicas")
        elif a.name == "CeleryWorkerDown":
            a = replace(a, expr=f"last_over_time({online}[{vanished}]) == 1\nunless on (worker) {online}",
                        description=f"Flower dropped {{{{ $labels.worker }}}} while it was online (killed, "
                                    f"no clean shutdown), for {t['worker_down_for']}.",
                        when=f"a worker's series vanished while online (killed, not a clean shutdown) "
                             f"within {vanished}, for {t['worker_down_for']}")
        elif a.name == "CeleryWorkerHostDown":
            a = replace(a, expr=f"{a.expr}\nunless on (hostname)\n{clean_offline}",
                        when=f"{a.when}, unless Flower saw that host's worker shut down cleanly")
        out.append(a)
    return out


def adjust_cases(stem, tests, cases):
    """The promtool cases of alert_tests.Cases for the adjusted alerts (kubernetes profile)."""
    from mixin.alert_tests import EXPORTER, FLOWER, case, firing, gauge

    step = cases.step
    if stem == "queue":
        backlog = cases.t["queue_backlog_max"]
        at = cases.s("queue_backlog_for") + 4 * step
        n = cases.samples(at) + 4
        q = 'job="rabbitmq_queues", instance="rabbitmq:15692", vhost="/", queue="celery"'
        ksm = 'job="kube-state-metrics", namespace="celery", horizontalpodautoscaler="keda-hpa-obs-celery-observability-workers"'

        def backlog_with_hpa(current, maximum):
            return [(f"rabbitmq_detailed_queue_messages_ready{{{q}}}", gauge(backlog * 5, n)),
                    (f"rabbitmq_detailed_queue_consumers{{{q}}}", gauge(1, n)),
                    (f"kube_horizontalpodautoscaler_status_current_replicas{{{ksm}}}", gauge(current, n)),
                    (f"kube_horizontalpodautoscaler_spec_max_replicas{{{ksm}}}", gauge(maximum, n))]

        labels = cases.labels("CeleryQueueBacklog", job=config.JOBS["rabbitmq_queues"], vhost="/", queue="celery")
        return tests + [
            case("a backlog while KEDA still adds workers", step, backlog_with_hpa(3, 10),
                 [firing("CeleryQueueBacklog", at, fires=False), firing("CeleryQueueGrowing", at, fires=False)]),
            case("a backlog with the workers at KEDA's maximum replicas", step, backlog_with_hpa(10, 10),
                 [firing("CeleryQueueBacklog", at, labels)]),
        ]
    if stem != "workers":
        return tests
    down = cases.s("worker_down_for")
    on = cases.samples(down) + 2
    at = (on + 1) * step + down + 3 * step
    n = cases.samples(at) + 4
    w1, w2 = "celery_worker-1@host-1", "celery_worker-2@host-2"
    online = ("flower_worker_online{" + FLOWER + ', worker="%s"}').__mod__
    host = f'celery_worker_up{{{EXPORTER}, hostname="host-1"}}'
    host_labels = cases.labels("CeleryWorkerHostDown", job=config.JOBS["exporter"], instance="exporter:9808",
                               hostname="host-1")
    out = []
    for c in tests:
        if c["name"] == "a worker reported offline, another online":
            c = case("a worker shut down cleanly (scale-down), another online", step,
                     [(online(w1), f"1x{on} 0x{n}"), (online(w2), gauge(1, n + on)), (host, f"1x{on} 0x{n}")],
                     [firing("CeleryWorkerDown", at, fires=False), firing("CeleryWorkerHostDown", at, fires=False)])
        elif c["name"] == "no worker online anywhere":
            # Every worker stopped cleanly: "no worker online" pages, the per-host alert does not.
            c = {**c, "promql_expr_test": [
                firing("CeleryWorkerHostDown", at, fires=False) if chk["expr"].endswith('"CeleryWorkerHostDown", alertstate="firing"}')
                else chk for chk in c["promql_expr_test"]]}
        out.append(c)
    return out + [
        case("a worker killed: Flower loses it while online, the exporter times it out", step,
             [(online(w1), f"1x{on} stale"), (online(w2), gauge(1, n + on)), (host, f"1x{on} 0x{n}")],
             [firing("CeleryWorkerDown", at, cases.labels("CeleryWorkerDown", worker=w1, job=config.JOBS["flower"],
                                                         instance="flower:5555")),
              firing("CeleryWorkerHostDown", at, host_labels)]),
    ]
