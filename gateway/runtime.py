"""Start-up and shutdown of one gateway process, whatever roles it runs.

The order is the point: broker (if embedded) → database schema → broker admin
connection → the gateway's own broker account → reconcile accounts with the
database → serve. Shutdown runs in reverse.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from contextlib import ExitStack
from types import FrameType

import uvicorn
from prometheus_client import start_http_server

from gateway import redact
from gateway.api.server import server_config
from gateway.broker.config import BrokerConfig
from gateway.broker.dynsec import DynSecClient, DynSecError
from gateway.broker.embedded import BrokerError, EmbeddedBroker, wait_for_port
from gateway.broker.tls import broker_pair, client_tls
from gateway.commands.sender import CommandSender
from gateway.commands.sweep import CommandSweep
from gateway.context import AppContext
from gateway.db import migrate
from gateway.db.engine import Database
from gateway.errors import BrokerUnavailable
from gateway.ingest.worker import IngestConfig, IngestWorker
from gateway.intercom.timer import CallTimer
from gateway.live import EventHub
from gateway.provisioning import Provisioner
from gateway.recording.role import RecorderRole
from gateway.secrets_store import GatewaySecrets, resolve_secrets
from gateway.security.panel import security_service
from gateway.security.role import AlarmsRole
from gateway.settings import BrokerMode, Settings
from recorder.live import LiveRelay
from recorder.live_rtc import LiveSessions

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
        autosave_interval_s=settings.mosquitto_autosave_interval_s,
        tls=settings.mqtt_tls,
        tls_port=settings.mqtt_tls_port,
        certfile=broker_pair(settings)[0],
        keyfile=broker_pair(settings)[1],
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
    db = _open_database(settings, stack, wait_for_broker=broker is None)
    dynsec = DynSecClient(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_admin_username,
        secrets.mqtt_admin_password,
        timeout=settings.mqtt_admin_timeout_s,
        tls=client_tls(settings),
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
    hub = EventHub(
        db,
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=settings.mqtt_username,
        password=secrets.mqtt_password,
        root=settings.mqtt_topic_root,
        tls=client_tls(settings),
    )
    hub.start()
    stack.callback(hub.stop)
    live = LiveSessions(
        LiveRelay(idle_s=settings.live_idle_s, open_timeout_s=settings.live_open_timeout_s),
        host_addresses=[str(address) for address in settings.webrtc_host_addresses],
        recheck_s=settings.stream_recheck_s,
    )
    stack.callback(live.close)
    commands = CommandSender(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_username,
        secrets.mqtt_password,
        tls=client_tls(settings),
    )
    commands.start()
    stack.callback(commands.stop)
    return AppContext(
        settings=settings,
        secrets=secrets,
        db=db,
        provisioner=provisioner,
        broker=broker,
        hub=hub,
        live=live,
        commands=commands,
    )


def _open_database(settings: Settings, stack: ExitStack, wait_for_broker: bool) -> Database:
    """Wait for a broker someone else runs (if so), migrate, open the database."""
    if wait_for_broker:
        try:
            wait_for_port(settings.mqtt_host, settings.mqtt_port, timeout=30)
        except BrokerError as exc:
            raise StartupError(str(exc)) from exc
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    db = Database(settings.database_url)
    stack.callback(db.dispose)
    return db


def _connect_only(settings: Settings, stack: ExitStack) -> tuple[GatewaySecrets, Database]:
    """For processes without the api role: the broker is someone else's."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return resolve_secrets(settings), _open_database(settings, stack, wait_for_broker=True)


def ingest_config(settings: Settings, secrets: GatewaySecrets) -> IngestConfig:
    return IngestConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=settings.mqtt_username,
        password=secrets.mqtt_password,
        root=settings.mqtt_topic_root,
        worker=settings.ingest_worker or socket.gethostname().split(".")[0][:40],
        session_expiry_s=settings.ingest_session_expiry_s,
        receive_maximum=settings.ingest_receive_maximum,
        batch_max=settings.ingest_batch_max,
        linger_s=settings.ingest_linger_ms / 1000,
        shared=settings.ingest_shared_subscription,
        tls=client_tls(settings),
    )


def start_ingest(
    settings: Settings, secrets: GatewaySecrets, db: Database, stack: ExitStack
) -> IngestWorker:
    worker = IngestWorker(ingest_config(settings, secrets), db, security_service(settings))
    worker.start()
    stack.callback(worker.stop)
    return worker


def run_roles(settings: Settings, roles: set[str], stack: ExitStack) -> AppContext | None:
    """Start the given roles; the api role also owns the embedded broker."""
    ctx: AppContext | None = None
    if "api" in roles:
        ctx = start_context(settings, stack)
        secrets, db = ctx.secrets, ctx.db
    else:
        secrets, db = _connect_only(settings, stack)
        if settings.metrics_port:
            # No HTTP API here, so Prometheus gets a listener of its own.
            server, thread = start_http_server(settings.metrics_port, addr=settings.http_host)
            stack.callback(thread.join, 5)
            stack.callback(server.shutdown)
    if "ingest" in roles:
        start_ingest(settings, secrets, db, stack)
    if "alarms" in roles:
        start_alarms(settings, secrets, db, stack)
    if "recorder" in roles:
        start_recorder(settings, secrets, db, stack)
    return ctx


def start_recorder(
    settings: Settings, secrets: GatewaySecrets, db: Database, stack: ExitStack
) -> RecorderRole:
    role = RecorderRole(settings, db, secrets.mqtt_password)
    role.start()
    stack.callback(role.stop)
    return role


def start_alarms(
    settings: Settings, secrets: GatewaySecrets, db: Database, stack: ExitStack
) -> AlarmsRole:
    role = AlarmsRole(settings, db, secrets.mqtt_password)
    role.start()
    stack.callback(role.stop)
    # Missed intercom calls, next to the deadlines they resemble.
    timer = CallTimer(settings, db, secrets.mqtt_password, role.security.transports)
    timer.start()
    stack.callback(timer.stop)
    # Unanswered gate and door commands expire in the same role.
    sweep = CommandSweep(settings, db, secrets.mqtt_password, role.security.transports)
    sweep.start()
    stack.callback(sweep.stop)
    return role


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (for processes that serve no HTTP)."""
    stopped = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while not stopped.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve_api(ctx: AppContext) -> None:
    """Serve HTTP until SIGINT or SIGTERM, then return through the caller's cleanup.

    Uvicorn shuts down gracefully and then re-raises the signal it caught;
    with the default handlers that would kill the process before the caller's
    ``ExitStack`` stops the broker and simulators. Our handlers turn that
    re-raised signal into ``SystemExit(0)``, which unwinds normally.
    """
    config = server_config(ctx)
    # After uvicorn configured its logging: it logs each WebSocket's URL.
    redact.install("uvicorn.error", "uvicorn.access", "uvicorn")
    previous = {sig: signal.signal(sig, _exit_cleanly) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
