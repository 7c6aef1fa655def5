"""Contracts, homes and devices, kept in step with the broker's accounts.

Order of writes, chosen so a crash between the two stores cannot leave a
device that connects but is unknown, or known but silently unable to connect:

- create: the row is flushed (not committed), then the broker account is
  created, then the row is committed. A crash or failed commit after the
  broker step leaves an orphan broker account that ``reconcile`` removes
  (at start-up); it can never connect as a device the database knows.
- delete / suspend: the broker account is deleted or disabled first (Mosquitto
  drops the open connection at once), then the row is updated. A crash in
  between leaves the row active but the account gone or disabled — which
  ``reconcile`` reports, and which fails closed.

A broker that does not answer in time may still apply the command later (a
hung broker processes its socket buffer when it wakes). So a timed-out create
or resume queues its undo behind it; a timed-out delete or suspend is left to
apply, since it only ever fails closed, and a retry completes it (both are
idempotent).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from devices.kinds import ZIGBEE2MQTT_KINDS, DeviceKind
from devices.topics import DeviceTopics, name_problem
from gateway.broker.acls import (
    SERVICE_ROLE,
    bridge_acls,
    device_acls,
    device_role,
    service_acls,
    speaks_for,
)
from gateway.broker.dynsec import (
    DynSecClient,
    DynSecError,
    add_role_acl_cmd,
    create_client_cmd,
    create_role_cmd,
)
from gateway.db.engine import Database
from gateway.db.models import DEFAULT_TIME_ZONE, Contract, ContractStatus, Device, Home, utcnow
from gateway.errors import BrokerUnavailable, Conflict, NotFound
from gateway.passwords import hash_password

log = logging.getLogger(__name__)

DEVICE_USER_PREFIX = "dev-"
DEVICE_UID_RE = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class DeviceCredentials:
    """What a device (or its installer) needs to connect; the password is shown once."""

    device: Device
    password: str
    topics: DeviceTopics


class Provisioner:
    """The one place that creates, suspends and removes contracts and devices."""

    def __init__(self, db: Database, dynsec: DynSecClient, topic_root: str) -> None:
        self.db = db
        self.dynsec = dynsec
        self.root = topic_root

    def topics_for(self, device: Device) -> DeviceTopics:
        return DeviceTopics(self.root, device.home.uid, device.uid)

    # --- the gateway's own broker account -------------------------------

    def ensure_service_account(self, username: str, password: str) -> None:
        """Create (or refresh) the bus account the gateway's roles connect with.

        Left alone when it is already right: changing an account makes the
        broker disconnect its clients (every running role), and a message
        that arrives while the account holds no role is not delivered to
        ingest at all."""
        try:
            client = self.dynsec.get_client(username)
            held = client is not None and any(
                r.get("rolename") == SERVICE_ROLE for r in client.get("roles", [])
            )
            if (
                held
                and self.dynsec.role_acls(SERVICE_ROLE) == set(service_acls(self.root))
                and self.dynsec.can_log_in(username, password)
            ):
                return
            if held:
                # Mosquitto 2.0.11 keeps a dangling pointer to a role deleted
                # while a client holds it (eclipse/mosquitto#2660): later
                # commands about that client answer garbage. Let go first.
                self.dynsec.command("removeClientRole", username=username, rolename=SERVICE_ROLE)
            if self.dynsec.role_exists(SERVICE_ROLE):
                self.dynsec.delete_role(SERVICE_ROLE)
            self.dynsec.create_role(SERVICE_ROLE, service_acls(self.root))
            if client is not None:
                self.dynsec.command("setClientPassword", username=username, password=password)
                self.dynsec.command("addClientRole", username=username, rolename=SERVICE_ROLE)
            else:
                self.dynsec.create_client(username, password, [SERVICE_ROLE])
        except DynSecError as exc:
            raise BrokerUnavailable(f"cannot set up the gateway's broker account: {exc}") from exc

    # --- contracts --------------------------------------------------------

    def create_contract(
        self, number: str, password: str, address: str, time_zone: str = DEFAULT_TIME_ZONE
    ) -> Contract:
        contract = Contract(number=number, password_hash=hash_password(password))
        contract.homes.append(Home(uid=secrets.token_hex(5), address=address, time_zone=time_zone))
        try:
            with self.db.transaction() as session:
                session.add(contract)
        except IntegrityError as exc:
            raise Conflict(f"contract {number} already exists") from exc
        return self.get_contract(number)

    def get_contract(self, number: str, session: Session | None = None) -> Contract:
        own = session is None
        session = session or self.db.session()
        try:
            contract = session.scalars(select(Contract).where(Contract.number == number)).first()
            if contract is None:
                raise NotFound(f"contract {number} not found")
            _ = [h.address for h in contract.homes]  # load while the session is open
            return contract
        finally:
            if own:
                session.close()

    @staticmethod
    def refuse_ended(contract: Contract) -> None:
        """A terminated contract only waits for its purge: nothing is added or resumed."""
        if contract.status in (ContractStatus.TERMINATED, ContractStatus.PURGING):
            raise Conflict(f"contract {contract.number} is terminated")

    def add_home(self, number: str, address: str, time_zone: str = DEFAULT_TIME_ZONE) -> Home:
        with self.db.transaction() as session:
            contract = self.get_contract(number, session)
            self.refuse_ended(contract)
            home = Home(
                uid=secrets.token_hex(5),
                address=address,
                time_zone=time_zone,
                contract_id=contract.id,
            )
            session.add(home)
        return home

    def set_suspended(self, number: str, suspended: bool) -> Contract:
        """Suspend (disable every device account, which drops them) or resume."""
        with self.db.transaction() as session:
            contract = self.get_contract(number, session)
            self.refuse_ended(contract)
            target = ContractStatus.SUSPENDED if suspended else ContractStatus.ACTIVE
            if contract.status != target:
                devices = self.live_devices(session, contract.id)
                try:
                    for device in devices:
                        self._broker(
                            self.dynsec.disable_client if suspended else self.dynsec.enable_client,
                            device.mqtt_username,
                        )
                except BrokerUnavailable:
                    if not suspended:
                        # A resume that failed half-way must not leave devices
                        # of a still-suspended contract able to connect.
                        for device in devices:
                            self.dynsec.send("disableClient", username=device.mqtt_username)
                    raise
                contract.status = target
                contract.status_changed_at = utcnow()
        return self.get_contract(number)

    # --- devices ----------------------------------------------------------

    @staticmethod
    def live_devices(session: Session, contract_id: int) -> list[Device]:
        return list(
            session.scalars(
                select(Device)
                .where(Device.contract_id == contract_id, Device.deleted_at.is_(None))
                .order_by(Device.id)
            )
        )

    def list_devices(self, number: str) -> list[tuple[Device, DeviceTopics]]:
        with self.db.session() as session:
            contract = self.get_contract(number, session)
            return [(d, self.topics_for(d)) for d in self.live_devices(session, contract.id)]

    def create_device(
        self,
        number: str,
        kind: DeviceKind,
        name: str,
        rtsp_url: str | None = None,
        home_uid: str | None = None,
    ) -> DeviceCredentials:
        with self.db.transaction() as session:
            contract = self.get_contract(number, session)
            self.refuse_ended(contract)
            home = self._pick_home(contract, home_uid)
            clash = session.scalars(
                select(Device.id).where(
                    Device.home_id == home.id, Device.name == name, Device.deleted_at.is_(None)
                )
            ).first()
            if clash is not None:
                raise Conflict(f"home {home.uid} already has a device named {name!r}")
            if (problem := name_problem(name)) is not None:
                # 409 like the other reserved names: the schema cannot say
                # these rules (no look-ahead in its regex dialect), and a
                # schema-valid request refused is not a 422.
                raise Conflict(problem)
            if DEVICE_UID_RE.fullmatch(name):
                # A name is also a topic level (the Zigbee2MQTT friendly name);
                # one shaped like an id could stand for another device's topics.
                raise Conflict("names shaped like device ids (12 hex digits) are reserved")
            bridge = self._bridge_of(session, home.id)
            if kind is DeviceKind.ZIGBEE_BRIDGE and bridge is not None:
                raise Conflict(f"home {home.uid} already has a Zigbee2MQTT bridge")
            uid = secrets.token_hex(6)
            device = Device(
                uid=uid,
                contract_id=contract.id,
                home=home,
                kind=kind.value,
                name=name,
                mqtt_username=DEVICE_USER_PREFIX + uid,
                rtsp_url=rtsp_url,
            )
            session.add(device)
            try:
                session.flush()
            except IntegrityError as exc:  # a concurrent create took the name
                raise Conflict(f"home {home.uid} already has a device named {name!r}") from exc
            password = secrets.token_urlsafe(18)
            topics = self.topics_for(device)
            role = device_role(device.mqtt_username)
            # One round trip. The account is bound to its client id, so no
            # account can take over (and disconnect) another device's session.
            acls = device_acls(topics)
            if kind is DeviceKind.ZIGBEE_BRIDGE:
                acls = bridge_acls(self.root, home, self._zigbee_devices(session, home.id))
            commands = [
                create_role_cmd(role, acls),
                create_client_cmd(device.mqtt_username, password, [role], device.mqtt_username),
            ]
            if kind in ZIGBEE2MQTT_KINDS and bridge is not None:
                commands += [
                    add_role_acl_cmd(device_role(bridge.mqtt_username), acl)
                    for acl in speaks_for(topics.base, device)
                ]
            if not contract.active:
                commands.append({"command": "disableClient", "username": device.mqtt_username})
            try:
                self._broker(self.dynsec.batch, commands)
            except BrokerUnavailable:
                # Whatever part of this reached the broker is undone behind it.
                self.dynsec.send("deleteClient", username=device.mqtt_username)
                self.dynsec.send("deleteRole", rolename=role)
                raise
        return DeviceCredentials(device, password, topics)

    @staticmethod
    def _bridge_of(session: Session, home_id: int) -> Device | None:
        return session.scalars(
            select(Device).where(
                Device.home_id == home_id,
                Device.kind == DeviceKind.ZIGBEE_BRIDGE.value,
                Device.deleted_at.is_(None),
            )
        ).first()

    @staticmethod
    def _zigbee_devices(session: Session, home_id: int) -> list[Device]:
        return list(
            session.scalars(
                select(Device).where(
                    Device.home_id == home_id,
                    Device.kind.in_([k.value for k in ZIGBEE2MQTT_KINDS]),
                    Device.deleted_at.is_(None),
                )
            )
        )

    @staticmethod
    def _pick_home(contract: Contract, home_uid: str | None) -> Home:
        if home_uid is None:
            return contract.homes[0]
        for home in contract.homes:
            if home.uid == home_uid:
                return home
        raise NotFound(f"home {home_uid} not found")

    def get_device(self, session: Session, contract_id: int, device_uid: str) -> Device:
        """A live device of this contract, or NotFound (also for other contracts' ids)."""
        device = session.scalars(
            select(Device).where(
                Device.uid == device_uid,
                Device.contract_id == contract_id,
                Device.deleted_at.is_(None),
            )
        ).first()
        if device is None:
            raise NotFound(f"device {device_uid} not found")
        return device

    def delete_device(self, number: str, device_uid: str) -> None:
        with self.db.transaction() as session:
            contract = self.get_contract(number, session)
            device = self.get_device(session, contract.id, device_uid)
            self.forget_account(device.mqtt_username, strict=True)
            bridge = self._bridge_of(session, device.home_id)
            if bridge is not None and DeviceKind(device.kind) in ZIGBEE2MQTT_KINDS:
                # The bridge may no longer speak for it; "not found" is fine.
                for acl in speaks_for(self.topics_for(device).base, device):
                    self.dynsec.send(
                        "removeRoleACL",
                        rolename=device_role(bridge.mqtt_username),
                        acltype=acl.acltype,
                        topic=acl.topic,
                    )
            device.deleted_at = utcnow()

    # --- broker helpers ---------------------------------------------------

    def forget_account(self, username: str, strict: bool = False) -> None:
        """Delete a device's broker client and role; "not found" counts as done."""
        for call, arg in (
            (self.dynsec.delete_client, username),
            (self.dynsec.delete_role, device_role(username)),
        ):
            try:
                call(arg)
            except DynSecError as exc:
                if "not found" in exc.message.lower():
                    continue
                if strict:
                    raise BrokerUnavailable(f"broker did not remove {username}: {exc}") from exc
                log.error("could not remove broker account %s: %s", username, exc)

    @staticmethod
    def _broker(call: object, *args: object) -> None:
        assert callable(call)
        try:
            call(*args)
        except DynSecError as exc:
            raise BrokerUnavailable(f"broker refused the change: {exc}") from exc

    # --- start-up reconciliation ------------------------------------------

    def reconcile(self, now: datetime | None = None) -> dict[str, int]:
        """Make the broker's device accounts agree with the database.

        Removes device accounts the database does not know as live (crash
        after the broker step of a create, or before the row update of a
        delete), disables accounts of suspended contracts, and logs live
        devices whose account is missing. Returns counts.
        """
        counts = {"removed": 0, "disabled": 0, "missing": 0}
        try:
            broker_users = {
                u for u in self.dynsec.list_clients() if u.startswith(DEVICE_USER_PREFIX)
            }
        except DynSecError as exc:
            raise BrokerUnavailable(f"cannot list broker accounts: {exc}") from exc
        with self.db.session() as session:
            rows = session.execute(
                select(Device.mqtt_username, Contract.status)
                .join(Contract, Contract.id == Device.contract_id)
                .where(Device.deleted_at.is_(None))
            ).all()
        live = {username: status for username, status in rows}
        for username in sorted(broker_users - live.keys()):
            self.forget_account(username)
            counts["removed"] += 1
        for username, status in live.items():
            if username not in broker_users:
                counts["missing"] += 1
                log.error("device account %s is in the database but not in the broker", username)
            elif status == ContractStatus.SUSPENDED:
                self._broker(self.dynsec.disable_client, username)
                counts["disabled"] += 1
        log.info("broker accounts reconciled: %s", counts)
        return counts
