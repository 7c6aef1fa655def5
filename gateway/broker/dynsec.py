"""Live account and ACL management through Mosquitto's dynamic-security plugin.

Commands go to ``$CONTROL/dynamic-security/v1`` as JSON and are answered on
``.../response``; we match answers by ``correlationData``. Deleting or
disabling a client makes Mosquitto disconnect its open sessions at once, which
is how a deleted device or a suspended contract is cut off without a restart.
"""

from __future__ import annotations

import json
import logging
import secrets
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from gateway.broker.client import new_client

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"


class DynSecError(RuntimeError):
    """The broker refused a command or could not be reached."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"{command}: {message}")
        self.command = command
        self.message = message


@dataclass(frozen=True)
class Acl:
    """One dynamic-security ACL entry (``acltype`` as Mosquitto names it)."""

    acltype: str
    topic: str
    allow: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow}


def create_role_cmd(rolename: str, acls: list[Acl]) -> dict[str, Any]:
    return {"command": "createRole", "rolename": rolename, "acls": [a.as_json() for a in acls]}


def add_role_acl_cmd(rolename: str, acl: Acl) -> dict[str, Any]:
    return {"command": "addRoleACL", "rolename": rolename, **acl.as_json()}


def create_client_cmd(
    username: str, password: str, roles: list[str], client_id: str | None = None
) -> dict[str, Any]:
    """An account; with ``client_id`` it may connect only under that id."""
    cmd: dict[str, Any] = {
        "command": "createClient",
        "username": username,
        "password": password,
        "roles": [{"rolename": r} for r in roles],
    }
    if client_id is not None:
        cmd["clientid"] = client_id
    return cmd


class DynSecClient:
    """A small synchronous client for dynamic-security commands.

    It keeps one MQTT connection (paho's network thread) for the life of the
    process; callers block until the broker answers or ``timeout`` passes.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        timeout: float = 5.0,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = timeout
        # correlation id -> (answered, answers so far, answers expected)
        self._pending: dict[str, tuple[threading.Event, list[dict[str, Any]], int]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._client = new_client(
            f"moydom-dynsec-{secrets.token_hex(4)}", username, password, tls=tls
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._host, self._port, self._tls = host, port, tls

    def connect(self) -> None:
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise DynSecError("connect", str(exc)) from exc
        self._client.loop_start()
        if not self._ready.wait(self._timeout):
            self._client.loop_stop()
            raise DynSecError("connect", "broker did not accept the admin account")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _props: Any,
    ) -> None:
        if reason.is_failure:
            log.error("dynsec admin connection refused: %s", reason)
            return
        result, _mid = client.subscribe(RESPONSE_TOPIC, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS:
            log.error("dynsec subscribe failed: %s", mqtt.error_string(result))

    def _on_subscribe(self, *_args: Any) -> None:
        self._ready.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            log.error("unreadable dynsec response on %s", msg.topic)
            return
        for response in body.get("responses", []):
            corr = response.get("correlationData")
            with self._lock:
                waiter = self._pending.get(corr)
            if waiter is not None:
                event, box, expected = waiter
                box.append(response)
                if len(box) == expected:
                    event.set()

    def send(self, command: str, **args: Any) -> None:
        """Queue a command without waiting for its answer.

        For compensation after a timeout: a command that timed out may still
        be applied when a hung broker wakes up, and commands on one connection
        are applied in order, so an undo queued behind it wins.
        """
        payload = json.dumps({"commands": [{"command": command, **args}]})
        info = self._client.publish(CONTROL_TOPIC, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("could not queue dynsec %s: %s", command, mqtt.error_string(info.rc))

    def batch(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send several commands in one message (one round trip); the broker
        applies them in order. Raise on the first error among the answers.

        A timeout means the outcome is unknown, not that nothing happened:
        callers compensate with ``send``.
        """
        corr = secrets.token_hex(8)
        event = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            self._pending[corr] = (event, box, len(commands))
        names = "+".join(str(c["command"]) for c in commands)
        try:
            payload = json.dumps({"commands": [{**c, "correlationData": corr} for c in commands]})
            info = self._client.publish(CONTROL_TOPIC, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise DynSecError(names, f"publish failed ({mqtt.error_string(info.rc)})")
            if not event.wait(self._timeout):
                raise DynSecError(names, "no answer from the broker")
        finally:
            with self._lock:
                self._pending.pop(corr, None)
        for response in box:
            if response.get("error"):
                raise DynSecError(str(response.get("command")), str(response["error"]))
        return box

    def command(self, command: str, **args: Any) -> dict[str, Any]:
        """Send one command and return the broker's answer; raise on an error."""
        return self.batch([{"command": command, **args}])[0]

    # The commands moydom uses, named as Mosquitto names them.

    def create_role(self, rolename: str, acls: list[Acl]) -> None:
        self.batch([create_role_cmd(rolename, acls)])

    def delete_role(self, rolename: str) -> None:
        self.command("deleteRole", rolename=rolename)

    def create_client(
        self, username: str, password: str, roles: list[str], client_id: str | None = None
    ) -> None:
        self.batch([create_client_cmd(username, password, roles, client_id)])

    def delete_client(self, username: str) -> None:
        self.command("deleteClient", username=username)

    def disable_client(self, username: str) -> None:
        self.command("disableClient", username=username)

    def enable_client(self, username: str) -> None:
        self.command("enableClient", username=username)

    def get_client(self, username: str) -> dict[str, Any] | None:
        try:
            data = self.command("getClient", username=username)
        except DynSecError as exc:
            if "not found" in exc.message.lower():
                return None
            raise
        client: dict[str, Any] = data.get("data", {}).get("client", {})
        return client

    def list_clients(self) -> list[str]:
        data = self.command("listClients", verbose=False, count=-1, offset=0)
        return [str(c) for c in data.get("data", {}).get("clients", [])]

    def role_acls(self, rolename: str) -> set[Acl] | None:
        """The role's ACLs, or None if there is no such role."""
        try:
            data = self.command("getRole", rolename=rolename)
        except DynSecError as exc:
            if "not found" in exc.message.lower():
                return None
            raise
        acls = data.get("data", {}).get("role", {}).get("acls", [])
        return {Acl(a["acltype"], a["topic"], bool(a.get("allow", True))) for a in acls}

    def can_log_in(self, username: str, password: str) -> bool:
        """Whether the broker takes these credentials (a throw-away connection)."""
        accepted = threading.Event()
        answered = threading.Event()
        probe = new_client(
            f"moydom-check-{secrets.token_hex(4)}", username, password, tls=self._tls
        )

        def on_connect(*args: Any) -> None:
            if not args[3].is_failure:
                accepted.set()
            answered.set()

        probe.on_connect = on_connect
        try:
            probe.connect(self._host, self._port, keepalive=10)
        except OSError:
            return False
        probe.loop_start()
        answered.wait(self._timeout)
        probe.disconnect()
        probe.loop_stop()
        return accepted.is_set()

    def role_exists(self, rolename: str) -> bool:
        try:
            self.command("getRole", rolename=rolename)
        except DynSecError as exc:
            if "not found" in exc.message.lower():
                return False
            raise
        return True
