"""The bundle's RabbitMQ user, created and updated by native mode from .env, on the real broker."""

import os

import requests

from native import broker as native_broker
from native import env as native_env


def can_log_in(user, password):
    r = requests.get(f"http://127.0.0.1:{native_broker.MANAGEMENT_PORT}/api/whoami", auth=(user, password), timeout=5)
    return r.status_code == 200


def test_a_password_that_begins_with_a_dash_is_set_not_taken_for_an_option(rabbitmq):
    parts = native_env.broker_parts(native_env.build()["RMQ_URL"])
    user = f"dash-test-{os.getpid()}"
    first = {**parts, "user": user, "password": "-first"}
    second = {**first, "password": "--second"}
    try:
        native_broker.ensure_user(first, lambda message: None)
        assert can_log_in(user, "-first")
        native_broker.ensure_user(second, lambda message: None)  # the user exists: its password changes
        assert can_log_in(user, "--second")
        assert not can_log_in(user, "-first")
    finally:
        native_broker.rabbitmqctl(["delete_user", "--", user], check=False)
