"""Configuration: the brief's defaults, MOYDOM_* variables, the TOML file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.broker.config import BrokerConfig, render
from gateway.settings import BrokerMode, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MOYDOM_"):
            monkeypatch.delenv(key)


def test_defaults_are_the_briefs() -> None:
    s = Settings()
    assert s.database_url == "sqlite:///var/moydom.db"
    assert s.mqtt_url == "mqtt://127.0.0.1:1883"
    assert s.http_port == 8080
    assert s.archive_path() == Path("var/archive")
    assert s.mqtt_broker is BrokerMode.EMBEDDED


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOYDOM_MQTT_URL", "mqtt://127.0.0.1:18830")
    monkeypatch.setenv("MOYDOM_HTTP_PORT", "9090")
    monkeypatch.setenv("MOYDOM_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("MOYDOM_DATABASE_URL", "postgresql://moydom@db/moydom")
    monkeypatch.setenv("MOYDOM_ARCHIVE_DIR", "/srv/archive")
    monkeypatch.setenv("MOYDOM_ADMIN_TOKEN", "billing-token-0123456789")
    s = Settings()
    assert (s.mqtt_host, s.mqtt_port) == ("127.0.0.1", 18830)
    assert (s.http_host, s.http_port) == ("0.0.0.0", 9090)
    assert s.database_url == "postgresql://moydom@db/moydom"
    assert s.archive_path() == Path("/srv/archive")
    assert (
        s.admin_token is not None and s.admin_token.get_secret_value() == "billing-token-0123456789"
    )


def test_toml_file_under_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "moydom.toml"
    cfg.write_text('http_port = 7000\nmqtt_url = "mqtt://127.0.0.1:2000"\n')
    monkeypatch.setenv("MOYDOM_CONFIG", str(cfg))
    monkeypatch.setenv("MOYDOM_HTTP_PORT", "7001")
    s = Settings()
    assert s.http_port == 7001  # environment wins
    assert s.mqtt_port == 2000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MOYDOM_MQTT_URL", "http://x:1"),
        ("MOYDOM_HTTP_PORT", "70000"),
        ("MOYDOM_MQTT_BROKER", "both"),
        ("MOYDOM_SECRET_KEY", ""),
        ("MOYDOM_ADMIN_TOKEN", "short"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_production_refuses_missing_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOYDOM_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="MOYDOM_ADMIN_TOKEN"):
        Settings()
    monkeypatch.setenv("MOYDOM_ADMIN_TOKEN", "a" * 16)
    monkeypatch.setenv("MOYDOM_SECRET_KEY", "b" * 32)
    assert Settings().admin_token is not None


def test_generated_broker_config_is_locked_down(tmp_path: Path) -> None:
    text = render(BrokerConfig("127.0.0.1", 1884, tmp_path, Path("/x/dynsec.so")))
    assert "listener 1884 127.0.0.1" in text
    assert "allow_anonymous false" in text
    assert "persistence true" in text
    assert "max_queued_messages 200000" in text
    assert f"plugin_opt_config_file {tmp_path}/dynamic-security.json" in text
