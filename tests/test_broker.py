"""The embedded broker: supervised, keeps accounts across restarts; when it is
unreachable, provisioning fails with 503 and changes nothing."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from sqlalchemy import func, select

from gateway.db.models import Device
from tests.conftest import Gateway
from tests.support import device_connect


def _broker_pid(gw: Gateway) -> int:
    assert gw.ctx.broker is not None and gw.ctx.broker.pid is not None
    return gw.ctx.broker.pid


def test_killed_broker_is_restarted_and_accounts_survive(gateway: Gateway) -> None:
    gateway.create_contract("4001")
    dev = gateway.create_device("4001", "motion", "hall")
    old = _broker_pid(gateway)
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            peer = device_connect(gateway.mqtt_port, dev, timeout=1)
        except OSError:  # not listening yet
            peer = None
        if peer is not None and peer.connected.is_set():
            break
        time.sleep(0.2)
    else:
        raise AssertionError("broker did not come back")
    assert _broker_pid(gateway) != old
    # The admin connection reconnects too: provisioning works again.
    deadline = time.monotonic() + 10
    while gateway.http.get("/api/v1/health").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    gateway.create_device("4001", "leak", "bath")


def test_provisioning_against_a_hung_broker_fails_closed(gateway_factory: Any) -> None:
    """A hung broker (SIGSTOP: no answer, but it will process its socket buffer
    when it wakes) gets 503s; afterwards no account exists that the database
    does not know, and nothing of a suspended contract can connect."""
    gateway: Gateway = gateway_factory(mqtt_admin_timeout_s=1.0)
    gateway.create_contract("4002")
    existing = gateway.create_device("4002", "motion", "hall")
    gateway.create_contract("4003")
    sleeper = gateway.create_device("4003", "motion", "hall")
    gateway.http.post("/api/v1/admin/contracts/4003/suspend", headers=gateway.admin)
    accounts_before = sorted(gateway.ctx.provisioner.dynsec.list_clients())
    pid = _broker_pid(gateway)
    os.kill(pid, signal.SIGSTOP)
    try:
        r = gateway.http.post(
            "/api/v1/admin/contracts/4002/devices",
            json={"kind": "leak", "name": "bath"},
            headers=gateway.admin,
        )
        assert r.status_code == 503 and r.json()["detail"]
        r = gateway.http.delete(
            f"/api/v1/admin/contracts/4002/devices/{existing['id']}", headers=gateway.admin
        )
        assert r.status_code == 503
        r = gateway.http.post("/api/v1/admin/contracts/4003/resume", headers=gateway.admin)
        assert r.status_code == 503
        health = gateway.http.get("/api/v1/health")
        assert health.status_code == 503 and health.json()["broker"] == "down"
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(1.0)  # let the woken broker work through what was queued
    with gateway.ctx.db.session() as s:
        live = s.scalar(select(func.count()).select_from(Device).where(Device.deleted_at.is_(None)))
    assert live == 2  # the failed create left no row
    accounts_after = sorted(gateway.ctx.provisioner.dynsec.list_clients())
    assert set(accounts_after) <= set(accounts_before)  # and no broker account
    assert not device_connect(gateway.mqtt_port, sleeper).connected.is_set()
    contract = gateway.http.get("/api/v1/admin/contracts/4003", headers=gateway.admin).json()
    assert contract["status"] == "suspended"
    # The timed-out delete may have reached the broker; a retry completes it.
    r = gateway.http.delete(
        f"/api/v1/admin/contracts/4002/devices/{existing['id']}", headers=gateway.admin
    )
    assert r.status_code == 204
    assert not device_connect(gateway.mqtt_port, existing).connected.is_set()
