"""native/derive.py renders the webhook's bearer token and the templates' path for native mode."""

import yaml

from native import derive, paths

AM = paths.REPO / "alertmanager" / "alertmanager.yml"


def hooks(doc):
    return [h for r in doc["receivers"] for h in r["webhook_configs"]]


def test_token_is_written_to_a_private_file_and_referenced(tmp_path):
    doc = yaml.safe_load(derive.alertmanager_config(AM, {"ALERT_WEBHOOK_TOKEN": "s3cret"}, tmp_path))
    token = tmp_path / "alert_webhook_token"
    assert token.read_text() == "s3cret" and oct(token.stat().st_mode)[-3:] == "600"
    assert all(
        h["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": str(token)} for h in hooks(doc)
    )
    assert "s3cret" not in derive.alertmanager_config(AM, {"ALERT_WEBHOOK_TOKEN": "s3cret"}, tmp_path)


def test_without_a_token_the_webhook_sends_none(tmp_path):
    doc = yaml.safe_load(derive.alertmanager_config(AM, {}, tmp_path))
    assert all("authorization" not in h.get("http_config", {}) for h in hooks(doc))


def test_template_paths_become_absolute(tmp_path):
    doc = yaml.safe_load(derive.alertmanager_config(AM, {}, tmp_path))
    assert doc["templates"] == [str(paths.REPO / "alertmanager" / "templates" / "*.tmpl")]
