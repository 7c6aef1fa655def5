"""The gateway's own broker account, set up by every role at start: a role
starting next to running ones must not disconnect them, nor make the broker
withhold messages from ingest while the account is being changed."""

from __future__ import annotations

import time

from sqlalchemy import select

from gateway.db.models import Event
from tests.conftest import Gateway
from tests.support import device_connect
from tests.test_ingest import wait_until


def test_a_role_starting_leaves_the_running_ones_connected(gateway: Gateway) -> None:
    gateway.create_contract("8301")
    motion = gateway.create_device("8301", "motion", "hall")
    worker = gateway.start_ingest()
    epoch = worker._epoch
    device = device_connect(gateway.mqtt_port, motion)
    username, password = gateway.service_credentials()
    for n in range(40):
        device.publish(motion["topics"]["state"], {"occupancy": n % 2 == 0, "seq": n})
        if n % 10 == 0:  # what `moydom run --role api` does at start, four times
            gateway.ctx.provisioner.ensure_service_account(username, password)
    time.sleep(1.0)
    with gateway.ctx.db.session() as s:
        wait_until(lambda: len(s.scalars(select(Event.id)).all()) == 40)
    assert worker._epoch == epoch  # never disconnected
    device.close()


def test_a_changed_password_is_still_applied(gateway: Gateway) -> None:
    username, _ = gateway.service_credentials()
    gateway.ctx.provisioner.ensure_service_account(username, "another service password 1")
    assert gateway.ctx.provisioner.dynsec.can_log_in(username, "another service password 1")
