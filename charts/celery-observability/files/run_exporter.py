"""Launch the danihodovic celery-exporter with a longer event queue TTL.

The exporter has no option for Celery's event_queue_ttl, and with the default 5 s RabbitMQ drops
events that a lagging exporter has not consumed yet (measured: 3-8 % lost at ~950 tasks/s). The
exporter builds its Celery app from `src.exporter.Celery`, so a subclass that sets the TTL is enough.
Usage: EVENT_QUEUE_TTL=60 EVENT_QUEUE_EXPIRES=120 python run_exporter.py --broker-url=... [any exporter option]
(the bundle's values come from worker/settings.py: native mode and compose pass them in the environment).
"""
import os
import sys

from celery import Celery

import src.exporter
from src.cli import cli


class TunedCelery(Celery):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conf.event_queue_ttl = float(os.environ["EVENT_QUEUE_TTL"])
        self.conf.event_queue_expires = float(os.environ["EVENT_QUEUE_EXPIRES"])
        # Its event receiver accepts this serializer and json (worker/settings.py EVENT_SERIALIZER).
        self.conf.event_serializer = os.environ.get("EVENT_SERIALIZER", "json")


src.exporter.Celery = TunedCelery

if __name__ == "__main__":
    missing = [name for name in ("EVENT_QUEUE_TTL", "EVENT_QUEUE_EXPIRES") if not os.environ.get(name)]
    if missing:
        sys.exit(f"run_exporter.py: set {' and '.join(missing)} (the bundle's values are in worker/settings.py)")
    cli(auto_envvar_prefix="CE")
