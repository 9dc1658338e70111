"""gunicorn settings. One process with threads: prometheus-flask-exporter's metrics and the
in-memory alert store then need no multiprocess mode."""

import os

bind = os.environ.get("APP_BIND", "127.0.0.1:8080")
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("APP_THREADS", "8"))
timeout = 30
# Keep idle keep-alive connections longer than any client of the bundle leaves one idle (the
# loadtest at 0.5 requests/s, a browser's form). A server that drops an idle connection at the very
# moment its client sends the next request on it resets that request (ECONNRESET; measured with
# gunicorn's default of 2 s: 6 in 320 requests sent about 2 s after the previous one).
keepalive = 75
accesslog = "-"
