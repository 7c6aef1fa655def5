"""Invariant 3 under the conditions that break it elsewhere: a controller
offline when the command is sent that comes back after the deadline never
acts (the broker's message expiry, and the payload deadline for brokers that
don't expire); a command the broker delivers again acts once. Real broker,
the simulated controllers of devices/, the protocol rules of devices.commands."""

from __future__ import annotations

import os
import secrets
import signal
import time
from typing import Any

import pytest

from devices.commands import CLOCK_TOLERANCE_S, EXPIRED, OPENED, REFUSED, CommandGuard
from gateway.db.command_models import CommandStatus
from tests.conftest import Gateway
from tests.support import mqtt_connect
from tests.test_commands import controller, url, wait_status

GATES = 50
"""Controllers per round: a round's trials run side by side."""


def _until(check: Any, timeout: float = 10.0) -> None:
    until = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < until, "timed out"
        time.sleep(0.02)


# -- the protocol's rules, on the controller's own clock ----------------------


def command(now: float, ttl: float = 10.0, **extra: Any) -> dict[str, Any]:
    cid = secrets.token_hex(12)
    return {"command": "open", "command_id": cid, "ts": now, "deadline": now + ttl, **extra}


def test_the_guard_acts_on_a_timely_command_once() -> None:
    guard = CommandGuard(started=1000.0)
    cmd = command(2000.0)
    first = guard.decide(cmd, 2001.0)
    assert first.act and first.answer is None
    assert guard.done(cmd["command_id"], OPENED, 2001.5)["result"] == OPENED
    again = guard.decide(cmd, 2003.0)  # redelivered: the same answer, no action
    assert not again.act and again.answer is not None and again.answer["result"] == OPENED


@pytest.mark.parametrize(
    ("cmd", "now", "result"),
    [
        (command(2000.0, ttl=10), 2010.5, EXPIRED),  # past the deadline
        (command(2000.0, ttl=10), 2010.0 - CLOCK_TOLERANCE_S / 2, EXPIRED),  # within the margin
        (command(2000.0, ttl=10), 1900.0, REFUSED),  # controller's clock 100 s slow
        (command(900.0, ttl=120), 901.0, REFUSED),  # issued before the controller started
        (command(2000.0, command="close"), 2001.0, REFUSED),
        ({"command": "open", "command_id": "x1", "ts": 2000.0}, 2001.0, REFUSED),
        ({"command": "open", "command_id": "x2", "ts": 2000.0, "deadline": True}, 2001.0, REFUSED),
    ],
)
def test_the_guard_never_acts_late_or_on_what_it_cannot_judge(
    cmd: dict[str, Any], now: float, result: str
) -> None:
    guard = CommandGuard(started=1000.0)
    decision = guard.decide(cmd, now)
    assert not decision.act
    assert decision.answer is not None and decision.answer["result"] == result
    assert not guard.decide(cmd, now).act  # nor on a second delivery


def test_a_restarted_controller_drops_what_was_issued_before_it_started() -> None:
    cmd = command(2000.0, ttl=30)
    assert CommandGuard(started=1000.0).decide(cmd, 2001.0).act
    decision = CommandGuard(started=2005.0).decide(cmd, 2006.0)  # memory lost in the restart
    assert not decision.act and decision.answer is not None
    assert decision.answer["result"] == EXPIRED


# -- offline when sent, back after the deadline: never acts -------------------


def run_trials(gw: Gateway, rounds: int) -> dict[str, int]:
    """``rounds`` x :data:`GATES` trials on each path: through the API (message
    expiry and payload deadline), and published with no expiry at all (a
    broker that ignores it: only the payload deadline stands)."""
    gw.create_contract("5201")
    gw.start_ingest()
    gw.start_alarms()
    auth = gw.login("5201")
    gates = [gw.create_device("5201", "gate", f"gate-{n}") for n in range(GATES)]
    sims = [controller(gw, gate) for gate in gates]
    user, password = gw.service_credentials()
    no_expiry = mqtt_connect(gw.mqtt_port, user, password)
    listed = f"/api/v1/homes/{gates[0]['home']}/commands?limit={GATES}"
    api_ids: set[str] = set()
    blind_ids: set[str] = set()
    for n in range(rounds):
        for sim in sims:
            sim.go_offline()
        sent = set()
        for gate in gates:
            r = gw.http.post(url(gate), json={"action": "open", "deadline_s": 1}, headers=auth)
            assert r.status_code == 201, r.text
            sent.add(r.json()["id"])
        last_deadline = 0.0
        for gate in gates:
            cmd = command(time.time(), ttl=1.0 + CLOCK_TOLERANCE_S)
            no_expiry.publish(gate["topics"]["set"], cmd)
            blind_ids.add(cmd["command_id"])
            last_deadline = cmd["deadline"]
        api_ids |= sent

        def expired(ids: set[str] = sent) -> bool:
            items = gw.http.get(listed, headers=auth).json()["items"]
            return {c["id"] for c in items if c["status"] == CommandStatus.EXPIRED} >= ids

        _until(expired, timeout=30)  # every API command expired before they return
        _until(lambda last=last_deadline: time.time() > last)
        marks = [sim.set_messages for sim in sims]
        for sim in sims:
            sim.go_online()
        for sim, gate in zip(sims, gates, strict=True):
            assert sim.wait_online()
            no_expiry.publish(gate["topics"]["set"], {"sentinel": n})
        # The sentinel comes after anything the session still held.
        _until(
            lambda marks=marks: all(s.set_messages > m for s, m in zip(sims, marks, strict=True))
        )
    no_expiry.close()
    seen = {cid for sim in sims for cid in sim.commands_seen}
    return {
        "trials_per_path": rounds * GATES,
        "api_delivered_late": len(seen & api_ids),
        "no_expiry_delivered_late": len(seen & blind_ids),
        "actions": sum(len(sim.actions) for sim in sims),
    }


def _report(figures: dict[str, int]) -> None:
    print("\ncommand trials (offline when sent, back after the deadline):", figures)


def test_controllers_back_after_the_deadline_never_act(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(command_wait_s=0, command_expiry_grace_s=0.2)
    figures = run_trials(gw, rounds=2)
    _report(figures)
    assert figures["actions"] == 0
    assert figures["api_delivered_late"] == 0  # the broker's expiry dropped them
    assert figures["no_expiry_delivered_late"] == figures["trials_per_path"]  # the guard did


@pytest.mark.slow
def test_a_thousand_controllers_back_after_the_deadline_never_act(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(command_wait_s=0, command_expiry_grace_s=0.2)
    figures = run_trials(gw, rounds=1000 // GATES)
    _report(figures)
    assert figures["trials_per_path"] == 1000
    assert figures["actions"] == 0
    assert figures["api_delivered_late"] == 0
    assert figures["no_expiry_delivered_late"] == 1000


# -- delivered again: acts once ---------------------------------------------


def test_a_command_redelivered_after_a_lost_puback_acts_once(gateway: Gateway) -> None:
    """The controller acts, then drops off before its PUBACK: the broker sends
    the command again on the persistent session (DUP)."""
    gateway.create_contract("5301")
    gateway.start_ingest()
    auth = gateway.login("5301")
    gate = gateway.create_device("5301", "gate", "gate")
    sim = controller(gateway, gate)
    sim.lose_next_ack()
    r = gateway.http.post(url(gate), json={"action": "open", "deadline_s": 30}, headers=auth)
    cmd = r.json()
    _until(lambda: bool(sim.actions) and not sim.wait_online(0))
    sim.go_online()
    done = wait_status(gateway, auth, cmd, "acknowledged")
    print(
        "\nredelivery after a lost PUBACK: delivered",
        len(sim.commands_seen),
        "acted",
        len(sim.actions),
    )
    assert sim.commands_seen == [cmd["id"], cmd["id"]]  # it did come again
    assert sim.actions == [cmd["id"]]
    assert done["result"] == "opened"


def test_a_command_a_restored_broker_sends_again_acts_once(gateway_factory: Any) -> None:
    """The broker saved its state with the command queued, delivered it (acted,
    PUBACKed), then died: restored from that snapshot it sends it again."""
    gw: Gateway = gateway_factory(mosquitto_autosave_interval_s=3600)
    gw.create_contract("5401")
    gw.start_ingest()
    auth = gw.login("5401")
    gate = gw.create_device("5401", "gate", "gate")
    sim = controller(gw, gate)
    sim.go_offline()
    r = gw.http.post(url(gate), json={"action": "open", "deadline_s": 60}, headers=auth)
    cmd = r.json()
    assert gw.ctx.broker is not None and gw.ctx.broker.pid is not None
    snapshot = gw.settings.var_dir / "broker" / "persistence" / "mosquitto.db"
    before = snapshot.stat().st_mtime_ns if snapshot.exists() else 0
    os.kill(gw.ctx.broker.pid, signal.SIGUSR1)  # snapshot: the command queued for the gate
    _until(lambda: snapshot.exists() and snapshot.stat().st_mtime_ns > before)
    time.sleep(0.2)  # the file is renamed into place when complete; let it settle
    sim.go_online()
    wait_status(gw, auth, cmd, "acknowledged")
    assert sim.actions == [cmd["id"]]
    restarts = gw.ctx.broker.restarts
    os.kill(gw.ctx.broker.pid, signal.SIGKILL)
    _until(lambda: gw.ctx.broker is not None and gw.ctx.broker.restarts > restarts, 30)
    _until(lambda: len(sim.commands_seen) >= 2, 30)
    print(
        "\nredelivery by a restored broker: delivered",
        len(sim.commands_seen),
        "acted",
        len(sim.actions),
    )
    assert sim.commands_seen == [cmd["id"], cmd["id"]]
    assert sim.actions == [cmd["id"]]
