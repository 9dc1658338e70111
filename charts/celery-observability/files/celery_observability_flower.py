"""Celery settings of Flower's own app in the celery-observability chart, read by
`celery --workdir=/etc/celery-observability --config=celery_observability_flower flower`.
Only what Flower's event receiver uses; the broker URL comes from --broker."""

import os

# RabbitMQ drops events older than this (seconds) from Flower's event queue: Celery's default, 5 s,
# loses events whenever Flower falls behind a burst. Redis ignores it (events are pub/sub).
event_queue_ttl = float(os.environ.get("EVENT_QUEUE_TTL", "60"))
# The queue itself is deleted this long (seconds) after Flower disconnects.
event_queue_expires = float(os.environ.get("EVENT_QUEUE_EXPIRES", "120"))
