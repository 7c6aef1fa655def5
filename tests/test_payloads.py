"""The payload layer: what Zigbee2MQTT and native devices publish is accepted
as they publish it; everything else is a PayloadError with its reason, and
no input raises anything else or hangs."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.kinds import NATIVE_KINDS, ZIGBEE2MQTT_KINDS, DeviceKind
from devices.native import NativeMessage
from devices.payloads import (
    EVENTS,
    KEYPAD_ACTIONS,
    MAX_DEPTH,
    MAX_PAYLOAD_BYTES,
    DeviceMessage,
    Health,
    PayloadError,
    Zigbee2MqttState,
    parse,
)
from devices.simulator import REPORTS
from devices.topics import Channel

K = DeviceKind
STATE = Channel.STATE


def state(kind: DeviceKind, payload: dict[str, Any] | bytes) -> DeviceMessage:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse(kind, STATE, raw)


def rejected(kind: DeviceKind, payload: bytes, channel: Channel = STATE) -> PayloadError:
    with pytest.raises(PayloadError) as info:
        parse(kind, channel, payload)
    assert len(str(info.value)) < 500
    return info.value


# --- Zigbee2MQTT, as a stock bridge publishes -------------------------------

AQARA_MOTION = {  # RTCGQ11LM
    "battery": 100,
    "device_temperature": 22,
    "illuminance": 40,
    "illuminance_lux": 40,
    "linkquality": 120,
    "occupancy": True,
    "power_outage_count": 5,
    "voltage": 3005,
}
AQARA_LEAK_ALARM = {"water_leak": True, "battery_low": False}  # SJCGQ11LM
AQARA_LEAK_REPORT = {
    "battery": 97,
    "device_temperature": 21,
    "linkquality": 87,
    "power_outage_count": 2,
    "voltage": 3015,
}
AQARA_DOOR = {  # MCCGQ11LM
    "battery": 91,
    "contact": False,
    "device_temperature": 25,
    "linkquality": 99,
    "power_outage_count": 3,
    "voltage": 2985,
}
KEYPAD_POLL = {  # Centralite 3400-D between key presses
    "battery": 88,
    "battery_low": False,
    "linkquality": 54,
    "occupancy": False,
    "tamper": False,
    "voltage": 2900,
}
KEYPAD_ARM = {
    "action": "arm_all_zones",
    "action_code": "1234",
    "action_transaction": 99,
    "action_zone": 0,
    "battery": 88,
    "linkquality": 60,
    "occupancy": False,
    "tamper": False,
    "voltage": 2900,
}
SIREN_WARNING = {
    "warning": {"mode": "burglar", "level": "high", "strobe": True, "duration": 60},
    "linkquality": 120,
}


@pytest.mark.parametrize(
    ("kind", "payload", "event", "health"),
    [
        (K.MOTION, AQARA_MOTION, "motion", Health(battery=100, voltage=3005, linkquality=120)),
        (K.LEAK, AQARA_LEAK_ALARM, "leak", Health(battery_low=False)),
        (K.LEAK, AQARA_LEAK_REPORT, "telemetry", Health(battery=97, voltage=3015, linkquality=87)),
        (K.CONTACT, AQARA_DOOR, "contact", Health(battery=91, voltage=2985, linkquality=99)),
        (
            K.KEYPAD,
            KEYPAD_POLL,
            "telemetry",
            Health(battery=88, battery_low=False, voltage=2900, linkquality=54),
        ),
        (K.SIREN, SIREN_WARNING, "siren", Health(linkquality=120)),
        (K.SIREN, {"battery": 100, "linkquality": 110}, "telemetry", Health(battery=100)),
    ],
)
def test_zigbee2mqtt_reports_are_accepted_as_published(
    kind: DeviceKind, payload: dict[str, Any], event: str, health: Health
) -> None:
    message = state(kind, payload)
    assert message.event == event
    assert message.body == payload  # every field kept, unknown ones included
    assert message.online is None
    for field, value in health.model_dump(exclude_none=True).items():
        assert getattr(message.health, field) == value


def test_zigbee2mqtt_field_values() -> None:
    assert state(K.MOTION, {"occupancy": False}).body == {"occupancy": False}
    assert state(K.LEAK, {"water_leak": False}).event == "leak"  # a restore is an event too
    assert state(K.CONTACT, {"contact": True}).body["contact"] is True  # true = closed
    assert state(K.CONTACT, {"contact": False}).body["contact"] is False  # false = open


def test_battery_percentages_are_rounded() -> None:
    message = state(K.MOTION, {"battery": 91.5, "voltage": 2995.4})
    assert message.health.battery == 92
    assert message.health.voltage == 2995
    assert message.body == {"battery": 92, "voltage": 2995}
    assert state(K.MOTION, {"battery": 0}).health.battery == 0
    assert state(K.MOTION, {"battery": 100.4}).health.battery == 100


def test_keypad_action_carries_code_outside_the_stored_body() -> None:
    message = state(K.KEYPAD, KEYPAD_ARM)
    assert message.event == "keypad_action"
    assert message.code == "1234"
    assert "action_code" not in message.body
    assert "1234" not in repr(message)
    assert message.body["action"] == "arm_all_zones"
    assert message.body["action_transaction"] == 99
    assert message.body["action_zone"] == 0


@pytest.mark.parametrize(
    "action",
    [*sorted(KEYPAD_ACTIONS), "arm_away"],  # other keypads' words are accepted too
)
def test_keypad_actions(action: str) -> None:
    message = state(
        K.KEYPAD,
        {"action": action, "action_code": "", "action_transaction": 7, "action_zone": "23"},
    )
    assert (message.event, message.code, message.body["action_zone"]) == (
        "keypad_action",
        "",
        "23",
    )


@pytest.mark.parametrize("cleared", ["", None])
def test_a_cleared_action_is_not_an_action(cleared: str | None) -> None:
    # Zigbee2MQTT's legacy action sensor publishes "" (and then null) after each action.
    message = state(K.KEYPAD, {"action": cleared, "action_code": None, "battery": 88})
    assert message.event == "telemetry"
    assert message.code is None


def test_tamper() -> None:
    assert state(K.CONTACT, {"tamper": True, "linkquality": 80}).event == "tamper"
    assert state(K.CONTACT, {"contact": True, "tamper": True}).event == "contact"
    assert state(K.CONTACT, {"tamper": False}).event == "telemetry"
    assert state(K.MOTION, {"occupancy": True, "tamper": True}).body["tamper"] is True


def test_nulls_empty_and_duplicates() -> None:
    message = state(K.MOTION, {"occupancy": None, "battery": None, "linkquality": 100})
    assert message.event == "telemetry"
    assert message.health == Health(linkquality=100)
    assert state(K.LEAK, {}).event == "telemetry"
    assert state(K.LEAK, {}).body == {}
    duplicate = parse(K.MOTION, STATE, b'{"occupancy": false, "occupancy": true}')
    assert duplicate.body == {"occupancy": True}
    assert state(K.MOTION, {"friendly": "Кухня"}).body == {"friendly": "Кухня"}


# --- availability ------------------------------------------------------------


@pytest.mark.parametrize("kind", list(K))
@pytest.mark.parametrize(
    ("payload", "online"),
    [
        (b'{"state":"online"}', True),
        (b'{"state": "offline"}', False),
        (b"online", True),
        (b"offline", False),
    ],
)
def test_availability(kind: DeviceKind, payload: bytes, online: bool) -> None:
    message = parse(kind, Channel.AVAILABILITY, payload)
    assert message.event == "availability"
    assert message.online is online
    assert message.body == {"state": "online" if online else "offline"}
    assert message.health == Health()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"state":"maybe"}', "invalid"),
        (b"{}", "invalid"),
        (b"ONLINE", "not_json"),
        (b'"online"', "not_object"),
        (b"online\n", "not_json"),
    ],
)
def test_bad_availability(payload: bytes, reason: str) -> None:
    assert rejected(K.MOTION, payload, Channel.AVAILABILITY).reason == reason


def test_set_is_never_ingested() -> None:
    assert rejected(K.GATE, b'{"command":"open"}', Channel.SET).reason == "invalid"


# --- native ------------------------------------------------------------------

NATIVE = [
    (K.GATE, {"event": "state", "state": "opening", "ts": 1795617075.25}, "gate_state"),
    (K.GATE, {"event": "state", "state": "fault", "detail": "obstruction"}, "gate_state"),
    (K.GATE, {"event": "command_result", "command_id": "7f3a", "result": "ok"}, "command_result"),
    (
        K.GATE,
        {"event": "command_result", "command_id": "7f3b", "result": "expired", "msg_id": "41"},
        "command_result",
    ),
    (K.GATE, {"event": "heartbeat", "uptime": 3600}, "heartbeat"),
    (K.INTERCOM, {"event": "call", "call_id": "c5", "apartment": "12"}, "intercom_call"),
    (
        K.INTERCOM,
        {"event": "call_ended", "call_id": "c5", "outcome": "answered", "ts": 1795617090},
        "intercom_call",
    ),
    (K.INTERCOM, {"event": "door_opened", "by": "app", "command_id": "9e1"}, "intercom_door"),
    (K.INTERCOM, {"event": "door_opened", "by": "key"}, "intercom_door"),
    (K.INTERCOM, {"event": "heartbeat"}, "heartbeat"),
    (K.ALARM_PANEL, {"event": "arm_state", "state": "armed_away", "user": 2}, "panel_arm"),
    (K.ALARM_PANEL, {"event": "zone", "zone": 3, "type": "burglary"}, "panel_zone"),
    (K.ALARM_PANEL, {"event": "zone", "zone": 3, "type": "leak", "restore": True}, "panel_zone"),
    (K.ALARM_PANEL, {"event": "trouble", "type": "ac_loss"}, "panel_trouble"),
    (
        K.ALARM_PANEL,
        {"event": "trouble", "type": "supervision", "zone": 7, "restore": True},
        "panel_trouble",
    ),
    (K.ALARM_PANEL, {"event": "command_result", "command_id": "a1", "result": "rejected"}, None),
    (K.CAMERA, {"event": "motion", "state": "start", "ts": 1795617075.5}, "motion"),
    (K.CAMERA, {"event": "motion", "state": "stop"}, "motion"),
    (K.CAMERA, {"event": "heartbeat", "ts": 1795617075.5}, "heartbeat"),
]


@pytest.mark.parametrize(("kind", "payload", "event"), NATIVE)
def test_native_events(kind: DeviceKind, payload: dict[str, Any], event: str | None) -> None:
    message = state(kind, payload)
    assert message.event == (event or "command_result")
    expected = {k: float(v) if k == "ts" else v for k, v in payload.items()}
    assert message.body == expected
    assert next(iter(message.body)) == "event"


def test_native_heartbeat_health() -> None:
    message = state(K.ALARM_PANEL, {"event": "heartbeat", "battery": 99.6, "battery_low": False})
    assert message.health == Health(battery=100, battery_low=False)


def test_every_native_kind_and_event_is_covered() -> None:
    assert {kind for kind, _, _ in NATIVE} == NATIVE_KINDS | {K.CAMERA}


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (K.GATE, {"event": "explode"}),  # unknown event
        (K.GATE, {"event": "call", "call_id": "c1", "apartment": "1"}),  # another kind's event
        (K.GATE, {"state": "open"}),  # no event
        (K.GATE, {"event": "state", "state": "open", "command_id": "x"}),  # extra field
        (K.GATE, {"event": "state", "state": "ajar"}),
        (K.GATE, {"event": "state", "state": "open", "ts": "2026-01-01T00:00:00Z"}),
        (K.GATE, {"event": "state", "state": "open", "ts": -1}),
        (K.GATE, {"event": "state", "state": "open", "ts": True}),
        (K.GATE, {"event": "command_result", "command_id": "has space", "result": "ok"}),
        (K.GATE, {"event": "command_result", "command_id": "", "result": "ok"}),
        (K.INTERCOM, {"event": "call", "call_id": "c1"}),  # missing apartment
        (K.INTERCOM, {"event": "door_opened", "by": "magic"}),
        (K.ALARM_PANEL, {"event": "zone", "zone": "3", "type": "burglary"}),
        (K.ALARM_PANEL, {"event": "zone", "zone": 1000, "type": "burglary"}),
        (K.ALARM_PANEL, {"event": "arm_state", "state": "armed_away", "code": "1234"}),
        (K.CAMERA, {"event": "motion", "state": True}),
        (K.CAMERA, {"event": "heartbeat", "battery": "100"}),
    ],
)
def test_bad_native_messages(kind: DeviceKind, payload: dict[str, Any]) -> None:
    error = rejected(kind, json.dumps(payload).encode())
    assert error.reason == "invalid"
    assert "1234" not in str(error)


def test_simulator_publishes_what_parse_accepts() -> None:
    rng = random.Random(1)
    for kind, report in REPORTS.items():
        for tick in range(13):
            message = state(kind, report(rng, tick))
            assert message.event in EVENTS


# --- rejections --------------------------------------------------------------


def test_size_limit_is_checked_before_decoding() -> None:
    padding = b"x" * (MAX_PAYLOAD_BYTES - len(b'{"a":""}'))
    assert state(K.MOTION, b'{"a":"' + padding + b'"}').event == "telemetry"
    assert rejected(K.MOTION, b'{"a":"' + padding + b'x"}').reason == "too_large"
    assert rejected(K.MOTION, b"\xff" * (MAX_PAYLOAD_BYTES + 1)).reason == "too_large"
    assert rejected(K.MOTION, b"x" * 10**6, Channel.AVAILABILITY).reason == "too_large"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"occupancy": true, "name": "\xff"}', "not_utf8"),
        (b"\xef\xbb\xbf{}", "not_json"),  # a BOM
        (b'{"a": "\\ud800"}', "not_utf8"),  # a lone surrogate, escaped
        (b'{"a": "\\u0000"}', "invalid"),
        (b"", "not_json"),
        (b'{"occupancy": true', "not_json"),
        (b"{'occupancy': true}", "not_json"),
        (b'{"a": 1}{"b": 2}', "not_json"),
        (b'{"a": NaN}', "not_json"),
        (b'{"a": Infinity}', "not_json"),
        (b'{"a": -Infinity}', "not_json"),
        (b'{"a": 1e400}', "not_json"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not_json"),
        (b"[]", "not_object"),
        (b'[{"occupancy": true}]', "not_object"),
        (b'"occupancy"', "not_object"),
        (b"42", "not_object"),
        (b"null", "not_object"),
        (b"true", "not_object"),
        (b"[" * 10_000 + b"]" * 10_000, "too_deep"),
        (b"[" * 60_000, "too_deep"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "too_deep"),
        (b'{"a": ' + b"[" * (MAX_DEPTH) + b"]" * (MAX_DEPTH) + b"}", "too_deep"),
    ],
)
def test_rejection_reasons(payload: bytes, reason: str) -> None:
    assert rejected(K.MOTION, payload).reason == reason


def test_depth_limit_is_inclusive() -> None:
    nested = b'{"a": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert state(K.MOTION, nested).event == "telemetry"


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (K.MOTION, {"occupancy": "true"}),
        (K.MOTION, {"occupancy": 1}),
        (K.LEAK, {"water_leak": "ON"}),
        (K.CONTACT, {"contact": "closed"}),
        (K.CONTACT, {"tamper": 0}),
        (K.LEAK, {"battery_low": "false"}),
        (K.MOTION, {"battery": "100"}),
        (K.MOTION, {"battery": 101}),
        (K.MOTION, {"battery": -1}),
        (K.MOTION, {"battery": True}),
        (K.MOTION, {"voltage": "3005"}),
        (K.MOTION, {"voltage": -5}),
        (K.MOTION, {"linkquality": 256}),
        (K.MOTION, {"linkquality": 1.5}),
        (K.KEYPAD, {"action": 5}),
        (K.KEYPAD, {"action": "x" * 65}),
        (K.KEYPAD, {"action": "disarm", "action_code": 1234}),
        (K.KEYPAD, {"action": "disarm", "action_transaction": "99"}),
        (K.KEYPAD, {"action": "disarm", "action_transaction": -1}),
        (K.KEYPAD, {"action": "disarm", "action_zone": 1.5}),
        (K.KEYPAD, {"action": "disarm", "action_zone": []}),
        (K.SIREN, {"warning": "burglar"}),
        (K.SIREN, {"warning": {"mode": "burglar", "strobe": "yes"}}),
    ],
)
def test_wrong_types_for_known_fields(kind: DeviceKind, payload: dict[str, Any]) -> None:
    error = rejected(kind, json.dumps(payload).encode())
    assert error.reason == "invalid"
    assert str(error).startswith(list(payload)[-1])  # names the field


def test_errors_do_not_echo_codes_and_stay_short() -> None:
    payload = {"action": "disarm", "action_code": "1234", "action_transaction": "x"}
    assert "1234" not in str(rejected(K.KEYPAD, json.dumps(payload).encode()))
    many = {"event": "state", **{f"k{'x' * 300}{i}": i for i in range(50)}}
    assert len(str(rejected(K.GATE, json.dumps(many).encode()))) < 500


# --- nothing but PayloadError, for any input -----------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=30,
)
KNOWN_KEYS = sorted(
    {"state", *Zigbee2MqttState.model_fields}.union(
        *(model.model_fields for model in NativeMessage.__subclasses__())
    )
)
known_keys = st.sampled_from(KNOWN_KEYS)
shaped = st.dictionaries(known_keys | st.text(max_size=8), json_values, max_size=8)
channels = st.sampled_from([Channel.STATE, Channel.AVAILABILITY])
kinds = st.sampled_from(list(DeviceKind))
fast = settings(max_examples=150, deadline=1000)


def check(kind: DeviceKind, channel: Channel, payload: bytes) -> None:
    try:
        message = parse(kind, channel, payload)
    except PayloadError as error:
        assert error.reason in {"too_large", "not_utf8", "not_json", "not_object", "too_deep"} | {
            "invalid"
        }
        assert 0 < len(str(error)) < 500
        return
    assert message.event in EVENTS
    json.dumps(message.body, allow_nan=False).encode("utf-8")  # storable as it is


@fast
@given(kinds, channels, st.binary(max_size=300))
def test_any_bytes(kind: DeviceKind, channel: Channel, payload: bytes) -> None:
    check(kind, channel, payload)


@fast
@given(kinds, channels, json_values)
def test_any_json(kind: DeviceKind, channel: Channel, value: Any) -> None:
    check(kind, channel, json.dumps(value).encode())


@fast
@given(kinds, channels, shaped)
def test_any_object_with_known_fields(
    kind: DeviceKind, channel: Channel, value: dict[str, Any]
) -> None:
    check(kind, channel, json.dumps(value).encode())


@fast
@given(kinds, st.sampled_from([p for _, p, _ in NATIVE] + [KEYPAD_ARM, AQARA_MOTION]), st.data())
def test_mutated_real_payloads(kind: DeviceKind, payload: dict[str, Any], data: Any) -> None:
    key = data.draw(st.sampled_from(sorted(payload)))
    mutated = {**payload, key: data.draw(json_values)}
    check(kind, STATE, json.dumps(mutated).encode())
    if kind in ZIGBEE2MQTT_KINDS:
        text = json.dumps(mutated)
        check(kind, STATE, text[: data.draw(st.integers(0, len(text)))].encode())
