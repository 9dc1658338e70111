"""The environment native mode gives its processes: .env secrets, the RabbitMQ user, profiles."""

import re

import pytest

from native import dotenv, env as native_env, paths

EXAMPLE = paths.REPO / ".env.example"


@pytest.fixture
def dotenv_file(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPO", tmp_path)
    for name in (
        "RMQ_URL",
        "RMQ_USER",
        "RMQ_PASSWORD",
        "PROFILE",
        "FLOWER_BASIC_AUTH",
        "FLOWER_PASSWORD",
        "FLOWER_UNAUTHENTICATED_API",
        "FLOWER_AUTH",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env.example").write_text(EXAMPLE.read_text())
    assert dotenv.ensure(say=lambda m: None)
    return tmp_path / ".env"


def test_first_run_writes_random_secrets_once(dotenv_file):
    first = dotenv_file.read_text()
    assert "=change-me" not in first and oct(dotenv_file.stat().st_mode)[-3:] == "600"
    # 48 hex digits each: safe in URLs, and never an option to a command-line tool (a leading "-").
    values = native_env.read_dotenv(dotenv_file)
    secrets = [values[k] for k in ("RMQ_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "FLASK_SECRET_KEY", "FLOWER_PASSWORD")]
    assert all(re.fullmatch("[0-9a-f]{48}", s) for s in secrets), secrets
    assert len(set(secrets)) == len(secrets)
    assert not dotenv.ensure(say=lambda m: None)  # never overwritten
    assert dotenv_file.read_text() == first


def test_the_broker_user_is_the_dotenv_user_not_guest(dotenv_file):
    env = native_env.build()
    values = native_env.read_dotenv(dotenv_file)
    parts = native_env.broker_parts(env["RMQ_URL"])
    assert (parts["user"], parts["password"]) == (values["RMQ_USER"], values["RMQ_PASSWORD"]) != ("guest", "guest")
    assert f"{parts['user']}:{parts['password']}@" in env["FLOWER_BROKER_API"]


def test_dev_profile_flower_api_without_password(dotenv_file):
    env = native_env.build()
    assert env["FLOWER_UNAUTHENTICATED_API"] == "true" and not env.get("FLOWER_BASIC_AUTH")


def test_production_profile_turns_on_flower_auth(dotenv_file, monkeypatch):
    monkeypatch.setenv("PROFILE", "production")
    env = native_env.build()
    values = native_env.read_dotenv(dotenv_file)
    assert env["FLOWER_BASIC_AUTH"] == f"admin:{values['FLOWER_PASSWORD']}"
    assert env["FLOWER_UNAUTHENTICATED_API"] == "false"


def test_unknown_profile_is_refused(dotenv_file, monkeypatch):
    monkeypatch.setenv("PROFILE", "prod")
    with pytest.raises(ValueError, match="PROFILE must be one of dev, production, got 'prod'"):
        native_env.build()
