"""WSGI entry point for gunicorn: `gunicorn --config app/gunicorn_conf.py app.wsgi:app`."""

from app.main import create_app

app = create_app()
