"""Flask task submitter: web form, JSON API, /metrics, and the Alertmanager webhook receiver."""
