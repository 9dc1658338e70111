# One image for the bundle's Python services: app (gunicorn), celery_worker and flower.
# compose.yaml gives each service its command; the default below runs the app.
FROM python:3.11.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user for every process. /data is Flower's state directory (FLOWER_DB): created
# here and owned by that user, so a new named volume mounted there inherits the ownership.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data

WORKDIR /srv

# Only what the containers run: the app, the worker side (Celery app, tasks, metrics, Flower's
# options) and the runbooks the app serves; native mode, the mixin, the load test, the bench, the
# tools and the tests stay out (tests/config/test_packaging.py checks). The code stays owned by
# root: the service user can read it, not change it. Dependencies are the pinned ones of
# pyproject.toml (runtime only, not the [test] extra).
COPY pyproject.toml ./
COPY app app
COPY worker worker
COPY docs/runbooks docs/runbooks
RUN pip install --no-cache-dir .

USER app

EXPOSE 8080 5555 9191

CMD ["gunicorn", "--config", "app/gunicorn_conf.py", "app.wsgi:app"]
