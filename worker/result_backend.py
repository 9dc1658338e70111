"""The bundle's Redis result backend: results survive a short Redis outage, tasks keep running.

- Final states (SUCCESS, FAILURE, ...) are retried while Redis is down (result_backend_always_retry,
  bounded in worker/celery_app.py), so a blip loses no result.
- STARTED (task_track_started) is best effort: one attempt, a warning if Redis is down. Retrying it
  would hold every task before its body runs, for as long as Redis is away.
- No pub/sub subscription per sent task: nothing in the bundle waits on AsyncResult.get() (the app
  polls the stored state), so subscriptions would only pile up in a long-running producer and make
  sending a task fail while Redis is down, although running it needs only the broker.
"""

import logging

from celery import states
from celery.backends.redis import RedisBackend

log = logging.getLogger(__name__)


class BundleRedisBackend(RedisBackend):
    def on_task_call(self, producer, task_id):
        pass

    def store_result(self, task_id, result, state, traceback=None, request=None, **kwargs):
        if state != states.STARTED:
            return super().store_result(task_id, result, state, traceback, request=request, **kwargs)
        result = self.encode_result(result, state)
        try:
            self._store_result(task_id, result, state, traceback, request=request, **kwargs)
        except Exception as exc:  # Redis down: the task runs anyway; its final state is retried
            log.warning("could not record STARTED for %s: %s", task_id, exc)
        return result


def use_in(celery_app):
    """Make `celery_app` use BundleRedisBackend for redis:// result backend URLs."""
    celery_app.loader.override_backends = {"redis": f"{__name__}:BundleRedisBackend"}
