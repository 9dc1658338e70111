"""Task events that name the queue: a worker's task-received event carries the queue the task came
from, so monitors (the celery-exporter's `queue_name`, Flower's task page) know it without the
publisher's task-sent event (task_send_sent_event, off by default: worker/settings.py).

Celery's task-received event has no queue; monitors otherwise take it from task-sent only. The
worker hands each request to the `task_received` signal just before it sends task-received, in the
same thread: the dispatcher below adds that request's queue to the event.
"""

import threading

from celery import signals
from celery.app.events import Events
from celery.events.dispatcher import EventDispatcher

from worker.latency import UNKNOWN_QUEUE, QueueLabels

_received = threading.local()
_queues = QueueLabels()  # the queue a routing key names, among those this worker consumes


@signals.task_received.connect(weak=False, dispatch_uid="worker.events.remember_queue")
def _remember_queue(request=None, **_):
    info = getattr(request, "delivery_info", None) or {}
    try:
        queue = _queues(request._app.amqp.queues.consume_from, info.get("routing_key"))
    except AttributeError:  # not a worker's request
        queue = None
    _received.uuid, _received.queue = getattr(request, "id", None), None if queue == UNKNOWN_QUEUE else queue


class QueueNamingDispatcher(EventDispatcher):
    def send(self, type, blind=False, **fields):  # noqa: A002 (Celery's own name for the argument)
        if type == "task-received" and "queue" not in fields and fields.get("uuid") == getattr(_received, "uuid", None):
            queue = getattr(_received, "queue", None)
            if queue:
                fields["queue"] = queue
        return super().send(type, blind=blind, **fields)


class QueueNamingEvents(Events):
    """The app's events (Celery(events=...)), with the dispatcher above."""

    dispatcher_cls = f"{__name__}:QueueNamingDispatcher"
