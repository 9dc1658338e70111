"""The worker's task events: they name the queue, and leave in batches.

A worker's task-received event carries the queue the task came from, so monitors (the
celery-exporter's `queue_name`, Flower's task page) know it without the publisher's task-sent event
(task_send_sent_event, off by default: worker/settings.py).

Celery's task-received event has no queue; monitors otherwise take it from task-sent only. The
worker hands each request to the `task_received` signal just before it sends task-received, in the
same thread: the dispatcher below adds that request's queue to the event.

The worker buffers its task events (Celery does, in `task.multi` messages) and sends them
EVENT_FLUSH_SECONDS after the first one (or once EVENT_BATCH_MAX wait) instead of at its event
loop's next turn, when with prefetch 1 there are only one or two: fewer, larger messages for the
worker, the broker and every monitor to handle, for a delay of at most EVENT_FLUSH_SECONDS in what
the monitors show.
"""

import threading

from celery import signals
from celery.app.events import Events
from celery.events.dispatcher import EventDispatcher
from kombu.asynchronous import get_event_loop

from worker import settings
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
    def __init__(self, *args, on_send_buffered=None, **kwargs):
        # The worker's consumer passes on_send_buffered (flush at the loop's next turn) when it runs
        # an event loop; the dispatcher then buffers task events and flushes them on a timer instead.
        self._flush_due = False
        batched = on_send_buffered is not None and settings.EVENT_FLUSH_SECONDS > 0
        if batched:
            on_send_buffered = self._flush_later
        super().__init__(*args, on_send_buffered=on_send_buffered, **kwargs)
        if batched:
            self.buffer_limit = settings.EVENT_BATCH_MAX

    def _flush_later(self):
        if self._flush_due:
            return
        hub = get_event_loop()
        if hub is None:
            self.flush()
            return
        self._flush_due = True
        hub.call_later(settings.EVENT_FLUSH_SECONDS, self._flush_now)

    def _flush_now(self):
        self._flush_due = False
        self.flush()  # sends nothing when the buffer is empty or the dispatcher closed

    def send(self, type, blind=False, **fields):  # noqa: A002 (Celery's own name for the argument)
        if type == "task-received" and "queue" not in fields and fields.get("uuid") == getattr(_received, "uuid", None):
            queue = getattr(_received, "queue", None)
            if queue:
                fields["queue"] = queue
        return super().send(type, blind=blind, **fields)


class QueueNamingEvents(Events):
    """The app's events (Celery(events=...)), with the dispatcher above."""

    dispatcher_cls = f"{__name__}:QueueNamingDispatcher"
