"""Celery app, tasks and the worker's own /metrics."""
