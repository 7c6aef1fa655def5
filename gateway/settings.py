"""Configuration: ``MOYDOM_*`` environment variables over an optional TOML file.

One class, read once at start-up. Secrets that have no safe default (the admin
token, the token-signing key, the broker's own passwords) are generated and
kept under ``var_dir`` in development; in production a missing one is an error
rather than a silently weak default.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    FilePath,
    IPvAnyAddress,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.dispatch.dc09 import key_bytes

MIN_SECRET_LENGTH = 16


class BrokerMode(StrEnum):
    """Whether moydom starts and supervises its own Mosquitto or only connects."""

    EMBEDDED = "embedded"
    EXTERNAL = "external"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class IceServer(BaseModel):
    """A STUN or TURN server (``stun:``, ``turn:`` or ``turns:`` URLs), as WebRTC configures one."""

    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: SecretStr | None = None

    @field_validator("urls")
    @classmethod
    def _ice_urls(cls, urls: list[str]) -> list[str]:
        if any(not url.startswith(("stun:", "stuns:", "turn:", "turns:")) for url in urls):
            raise ValueError("ICE server URLs start with stun:, stuns:, turn: or turns:")
        return urls


def _config_file() -> Path | None:
    path = os.environ.get("MOYDOM_CONFIG")
    return Path(path) if path else None


class Settings(BaseSettings):
    """Every knob of the gateway; see docs/operators.md for each one's meaning."""

    # Errors name the setting but never echo its value: it may be a secret.
    model_config = SettingsConfigDict(
        env_prefix="MOYDOM_", extra="ignore", hide_input_in_errors=True
    )

    environment: Environment = Environment.DEVELOPMENT
    var_dir: Path = Path("./var")
    database_url: str = ""
    auto_migrate: bool = True
    """Apply migrations at start. Turn off where several processes share one
    database and ``moydom db upgrade`` runs once before them."""
    archive_dir: Path | None = None

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Where a process without the api role serves /metrics (the api serves its own)."""
    metrics_token: SecretStr | None = None
    """Bearer token for the api's /metrics (unset: the admin token)."""
    trusted_proxies: list[IPvAnyNetwork] = []
    """Proxies whose ``X-Forwarded-For``/``-Proto`` are believed (none: the peer is the client)."""
    allowed_origins: list[str] = []
    """Browser origins besides the gateway's own that may open its WebSockets."""
    http_max_body_bytes: int = Field(default=1 << 20, ge=0)
    """Larger request bodies get 413 before they are read."""
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    """A request's headers must arrive within this, or the connection is closed."""

    admin_token: SecretStr | None = None
    secret_key: SecretStr | None = None
    access_token_ttl_s: int = Field(default=12 * 3600, gt=0)
    stream_recheck_s: float = Field(default=30.0, gt=0)
    """How often an open WebSocket re-checks its token and contract."""

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_broker: BrokerMode = BrokerMode.EMBEDDED
    mqtt_username: str = "moydom"
    mqtt_password: SecretStr | None = None
    mqtt_admin_username: str = "moydom-admin"
    mqtt_admin_password: SecretStr | None = None
    mqtt_topic_root: str = "moydom"
    mqtt_admin_timeout_s: float = Field(default=5.0, gt=0)
    mqtt_tls_port: int | None = Field(default=None, ge=1, le=65535)
    """The embedded broker also listens with TLS here (devices use mqtts://)."""
    mqtt_tls_certfile: FilePath | None = None
    """The embedded broker's certificate (PEM); unset: a self-signed pair is
    made once under <var_dir>/broker/tls (fine for the demo, pin it on devices)."""
    mqtt_tls_keyfile: FilePath | None = None
    mqtt_tls_cafile: FilePath | None = None
    """What the gateway's own clients trust on an mqtts:// MOYDOM_MQTT_URL
    (default: the embedded broker's certificate; the system CAs if external)."""
    mosquitto_binary: str = "mosquitto"
    mosquitto_dynsec_plugin: Path = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
    mosquitto_max_queued_messages: int = 200_000
    mosquitto_autosave_interval_s: float = Field(default=0.5, gt=0)
    """How often the embedded broker saves its state: a SIGKILLed broker loses
    what it accepted since (docs/ingest.md, "A broker crash")."""

    ingest_worker: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,40}$",
        description="stable name of this ingest worker (default: the host name)",
    )
    ingest_session_expiry_s: int = Field(default=7 * 24 * 3600, gt=0)
    ingest_receive_maximum: int = Field(default=2000, ge=1, le=65535)
    ingest_shared_subscription: bool = False
    """True when several ingest workers share the load (needs Mosquitto >= 2.0.12
    to keep messages published while a worker is away across a broker restart)."""
    ingest_batch_max: int = Field(default=1000, ge=1)
    ingest_linger_ms: int = Field(default=20, ge=0)

    recorder_segment_s: float = Field(default=10.0, ge=2, le=60)
    recorder_preroll_s: float = Field(default=5.0, ge=0, le=60)
    recorder_motion: bool = True
    """Detect motion on every camera (a camera's settings can turn it off)."""
    retention_days: float = Field(default=7.0, gt=0)
    """Default continuous, motion and event-clip retention (a camera's settings win)."""
    archive_min_free_bytes: int = Field(default=1 << 30, ge=0)
    archive_min_free_percent: float = Field(default=5.0, ge=0, le=90)
    """The free-space floor is the larger of the two."""
    retention_sweep_s: float = Field(default=300.0, gt=0)
    clip_before_s: float = Field(default=10.0, ge=0)
    clip_after_s: float = Field(default=60.0, gt=0)
    """An intercom call's or an alarm's clip: this long before and after it."""
    call_ring_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """An intercom call nobody answered within this is missed (and alerted)."""
    call_clip_after_s: float = Field(default=30.0, ge=0, le=600)
    """An intercom call's clip runs from its ringing to this long after it ended."""
    command_deadline_s: float = Field(default=10.0, ge=1, le=60)
    """A gate, barrier or door command not acted on within this is never acted
    on (its payload deadline and MQTT message expiry); a request may ask for less."""
    command_wait_s: float = Field(default=3.0, ge=0, le=10)
    """How long ``POST …/commands`` waits for the controller's answer before
    it answers ``sent`` (the outcome follows on the stream)."""
    command_expiry_grace_s: float = Field(default=2.0, ge=0, le=30)
    """A command unanswered this long after its deadline is ``expired``: room
    for an answer sent just before the deadline to arrive."""

    alarms_poll_s: float = Field(default=1.0, gt=0)
    """How often the alarms role looks for due deadlines, cases and outbox rows
    when no notice woke it earlier."""
    dispatch_ack_timeout_s: float = Field(default=60.0, gt=0)
    """A case no dispatcher acknowledged within this is sent again, and again."""
    outbox_max_attempts: int = Field(default=20, ge=1)
    """E-mail and SMS give up after this many tries (alarms to the central
    station never give up)."""

    central_station_host: str | None = None
    central_station_port: int = Field(default=12000, ge=1, le=65535)
    central_station_account: str = Field(default="", pattern=r"^[0-9A-Fa-f]{0,16}$")
    """The line account in every DC-09 frame's header (each panel's own account
    stays in the data); empty: each panel's account is both (docs/central-station.md)."""
    central_station_key: SecretStr | None = None
    central_station_key_encoding: Literal["ascii", "hex"] = "ascii"
    """How the key is written: its characters are the AES key (``ascii``, as
    pysiaalarm and most receivers take it) or hex digits of the key bytes."""
    central_station_receiver: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{1,6}$")
    central_station_line: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{1,6}$")
    central_station_ack_timeout_s: float = Field(default=5.0, gt=0)

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_sender: str = "moydom@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    sms_url: str | None = None
    sms_api_key: SecretStr | None = None
    push_subject: str = "mailto:support@localhost"
    """The VAPID ``sub`` claim of Web Push messages: a contact push services can reach."""
    push_allow_http_loopback: bool = False
    """Accept ``http://127.0.0.1`` push endpoints (tests run a push service on loopback);
    otherwise only ``https://`` endpoints are accepted."""
    purge_grace_days: float = Field(default=30, ge=0)
    """Days after a contract's termination before its personal data, events, recordings and
    audit entries are purged (152-FZ: deleted once the purpose ends)."""

    live_idle_s: float = Field(default=10.0, ge=0)
    """How long a camera's live upstream stays open after its last viewer left."""
    live_open_timeout_s: float = Field(default=10.0, gt=0)
    """How long an offer waits for its camera to start streaming before a 503."""
    webrtc_ice_servers: list[IceServer] = []
    """STUN/TURN servers for live view, used by the gateway and handed to viewers (none by
    default: never a public STUN server unless configured). See docs/live.md."""
    webrtc_turn_secret: SecretStr | None = None
    """coturn's ``static-auth-secret``: TURN servers without a username get per-viewer
    credentials valid for ``webrtc_turn_ttl_s``."""
    webrtc_turn_ttl_s: int = Field(default=3600, gt=0)
    webrtc_host_addresses: list[IPvAnyAddress] = []
    """The addresses the gateway offers host candidates on (empty: every interface address but
    loopback, aioice's choice)."""

    login_window_s: int = Field(default=900, gt=0)
    login_max_failures_per_contract: int = Field(default=10, gt=0)
    """Failures on a contract, from any addresses, after which its logins slow down."""
    login_max_failures_per_address: int = Field(default=20, gt=0)
    login_max_failures_per_pair: int = Field(default=5, gt=0)
    """Failures of one contract from one address after which that pair waits the window out."""
    login_max_delay_s: int = Field(default=30, gt=0)
    """The longest a slowed-down contract makes the next attempt wait."""
    reset_max_requests_per_login: int = Field(default=3, gt=0)
    """Password-reset codes asked for one login in ``login_window_s`` (each may be an SMS)."""
    reset_max_requests_per_address: int = Field(default=10, gt=0)
    """Password-reset codes asked from one client address in ``login_window_s``."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment wins over the TOML file named by ``MOYDOM_CONFIG``."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @field_validator(
        "admin_token", "secret_key", "mqtt_password", "mqtt_admin_password", "metrics_token"
    )
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("MOYDOM_MQTT_URL must look like mqtt://host:port or mqtts://…")
        return value

    @model_validator(mode="after")
    def _central_station_key(self) -> Settings:
        """A key the link would refuse must stop the start, not every alarm later."""
        if self.central_station_key is not None:
            key = self.central_station_key.get_secret_value()
            try:
                key_bytes(key, self.central_station_key_encoding)
            except ValueError as exc:
                raise ValueError(f"MOYDOM_CENTRAL_STATION_KEY: {exc}") from None
        return self

    @model_validator(mode="after")
    def _fill_derived(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'moydom.db'}"
        if self.archive_dir is None:
            self.archive_dir = self.var_dir / "archive"
        if self.environment is Environment.PRODUCTION:
            missing = [
                name for name in ("admin_token", "secret_key") if getattr(self, name) is None
            ]
            if self.mqtt_broker is BrokerMode.EXTERNAL:
                missing += [
                    name
                    for name in ("mqtt_password", "mqtt_admin_password")
                    if getattr(self, name) is None
                ]
            if missing:
                names = ", ".join(f"MOYDOM_{n.upper()}" for n in missing)
                raise ValueError(f"production requires explicit secrets: {names}")
        return self

    @property
    def mqtt_host(self) -> str:
        return urlsplit(self.mqtt_url).hostname or "127.0.0.1"

    @property
    def mqtt_port(self) -> int:
        return urlsplit(self.mqtt_url).port or (8883 if self.mqtt_tls else 1883)

    @property
    def mqtt_tls(self) -> bool:
        """The gateway's own clients connect with TLS (an mqtts:// URL)."""
        return urlsplit(self.mqtt_url).scheme == "mqtts"

    def archive_path(self) -> Path:
        assert self.archive_dir is not None  # filled by the validator
        return self.archive_dir


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; keyword overrides are for tests and the CLI."""
    return Settings(**overrides)
