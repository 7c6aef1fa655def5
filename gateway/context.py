"""What one gateway process shares between its parts: built once by the runtime
(or a test), handed to the API through ``app.state`` — no module globals."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.broker.embedded import EmbeddedBroker
from gateway.commands.sender import CommandSender
from gateway.db.engine import Database
from gateway.live import EventHub
from gateway.login import ThrottlePolicy
from gateway.provisioning import Provisioner
from gateway.secrets_store import GatewaySecrets
from gateway.security.panel import SecurityService, security_service
from gateway.settings import Settings
from recorder.live_rtc import LiveSessions


@dataclass
class AppContext:
    settings: Settings
    secrets: GatewaySecrets
    db: Database
    provisioner: Provisioner
    broker: EmbeddedBroker | None = None
    """The supervised Mosquitto, when this process runs the embedded one."""
    hub: EventHub | None = None
    """Live fan-out of stored events to this process's WebSocket clients."""
    live: LiveSessions | None = None
    """Live view: the cameras' WebRTC sessions and their shared upstreams."""
    commands: CommandSender | None = None
    """Publishes gate and door commands on the broker."""

    @property
    def security(self) -> SecurityService:
        return security_service(self.settings)

    @property
    def throttle(self) -> ThrottlePolicy:
        s = self.settings
        return ThrottlePolicy(
            window_s=s.login_window_s,
            max_per_contract=s.login_max_failures_per_contract,
            max_per_address=s.login_max_failures_per_address,
            max_per_pair=s.login_max_failures_per_pair,
            max_delay_s=s.login_max_delay_s,
        )
