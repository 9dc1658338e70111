"""Tasks only the test probe worker runs (`-I tests.probe_tasks`): a task that retries, one that
is rejected. They produce the task-retried and task-rejected events the stack's own tasks never do."""

from celery.exceptions import Reject

from worker.celery_app import app


@app.task(bind=True, name="probe_retry", max_retries=5)
def probe_retry(self, retries=2):
    """Retries `retries` times (each a task-retried event), then succeeds."""
    if self.request.retries < retries:
        raise self.retry(countdown=0.2)
    return self.request.retries


@app.task(bind=True, name="probe_reject")
def probe_reject(self):
    """Rejected without requeue: a task-rejected event (the message is dropped)."""
    raise Reject("rejected on purpose", requeue=False)
