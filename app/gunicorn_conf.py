"""gunicorn settings. One process with threads: prometheus-flask-exporter's metrics and the
in-memory alert store then need no multiprocess mode."""
import os

bind = os.environ.get("APP_BIND", "127.0.0.1:8080")
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("APP_THREADS", "8"))
timeout = 30
accesslog = "-"
