"""Start-up and shutdown of one gateway process, whatever roles it runs.

The order is the point: broker (if embedded) → database schema → broker admin
connection → the gateway's own broker account → reconcile accounts with the
database → serve. Shutdown runs in reverse.
"""

from __future__ import annotations

import logging
import signal
from contextlib import ExitStack
from types import FrameType

import uvicorn

from gateway.api.app import create_app
from gateway.broker.config import BrokerConfig
from gateway.broker.dynsec import DynSecClient, DynSecError
from gateway.broker.embedded import BrokerError, EmbeddedBroker, wait_for_port
from gateway.context import AppContext
from gateway.db import migrate
from gateway.db.engine import Database
from gateway.errors import BrokerUnavailable
from gateway.provisioning import Provisioner
from gateway.secrets_store import resolve_secrets
from gateway.settings import BrokerMode, Settings

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A dependency the gateway needs could not be brought up."""


def broker_config(settings: Settings) -> BrokerConfig:
    return BrokerConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        state_dir=(settings.var_dir / "broker").resolve(),
        dynsec_plugin=settings.mosquitto_dynsec_plugin,
        max_queued_messages=settings.mosquitto_max_queued_messages,
    )


def start_context(settings: Settings, stack: ExitStack) -> AppContext:
    """Bring up everything the API needs; register the teardown on ``stack``."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    secrets = resolve_secrets(settings)
    broker: EmbeddedBroker | None = None
    if settings.mqtt_broker is BrokerMode.EMBEDDED:
        broker = EmbeddedBroker(
            broker_config(settings),
            settings.mqtt_admin_username,
            secrets.mqtt_admin_password,
            settings.mosquitto_binary,
        )
        try:
            broker.start()
        except BrokerError as exc:
            raise StartupError(str(exc)) from exc
        stack.callback(broker.stop)
    else:
        try:
            wait_for_port(settings.mqtt_host, settings.mqtt_port, timeout=30)
        except BrokerError as exc:
            raise StartupError(str(exc)) from exc
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    db = Database(settings.database_url)
    stack.callback(db.dispose)
    dynsec = DynSecClient(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_admin_username,
        secrets.mqtt_admin_password,
        timeout=settings.mqtt_admin_timeout_s,
    )
    try:
        dynsec.connect()
    except DynSecError as exc:
        raise StartupError(f"cannot administer the broker: {exc}") from exc
    stack.callback(dynsec.close)
    provisioner = Provisioner(db, dynsec, settings.mqtt_topic_root)
    try:
        provisioner.ensure_service_account(settings.mqtt_username, secrets.mqtt_password)
        provisioner.reconcile()
    except BrokerUnavailable as exc:
        raise StartupError(str(exc)) from exc
    return AppContext(
        settings=settings, secrets=secrets, db=db, provisioner=provisioner, broker=broker
    )


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve_api(ctx: AppContext) -> None:
    """Serve HTTP until SIGINT or SIGTERM, then return through the caller's cleanup.

    Uvicorn shuts down gracefully and then re-raises the signal it caught;
    with the default handlers that would kill the process before the caller's
    ``ExitStack`` stops the broker and simulators. Our handlers turn that
    re-raised signal into ``SystemExit(0)``, which unwinds normally.
    """
    config = uvicorn.Config(
        create_app(ctx),
        host=ctx.settings.http_host,
        port=ctx.settings.http_port,
        log_level="info",
        access_log=False,
        lifespan="off",
    )
    previous = {sig: signal.signal(sig, _exit_cleanly) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
