"""What a device may publish, decided in one place: raw MQTT payload bytes in,
a validated :class:`DeviceMessage` or a :class:`PayloadError` out.

The ingest loop calls :func:`parse` for every message and must survive
anything a device, a broken bridge or an attacker sends, so the checks run
cheapest first and each failure has its own ``reason`` code:

``invalid`` (channel)
    The ``/set`` channel carries commands to the device; it is never ingested.
``too_large``
    More than :data:`MAX_PAYLOAD_BYTES` (64 KiB), checked before any decoding.
    Real reports are a few hundred bytes.
``not_utf8``
    Not valid UTF-8, or a JSON ``\\ud800``-style escape of a lone surrogate:
    such text cannot be stored or sent on.
``not_json``
    Not one JSON document (RFC 8259). ``NaN``, ``Infinity`` and numbers that
    overflow a double (``1e400``) are refused: they are not JSON and would
    poison sums and comparisons. Duplicate keys are allowed; the last wins,
    as in every JSON library a device maker uses.
``not_object``
    The top level is not an object. (Exception: Zigbee2MQTT 1.x publishes
    availability as the bare words ``online``/``offline``; both are accepted.)
``too_deep``
    Objects and arrays nested more than :data:`MAX_DEPTH` levels (the top-level
    object is level 1). Real payloads use two. Input deep enough to exhaust
    the JSON parser's recursion is refused the same way.
``invalid``
    The object does not fit the schema for the device's kind, or holds a NUL
    character (PostgreSQL's ``jsonb`` cannot store ``\\u0000``). ``str(exc)``
    summarises the first problems, without echoing values (a keypad payload
    holds a PIN), in under 500 characters.

What each kind may send:

Availability (every kind)
    ``{"state": "online"|"offline"}`` or the bare words; event ``availability``.
Zigbee2MQTT kinds (motion, leak, contact, keypad, siren)
    The JSON object a stock Zigbee2MQTT publishes. The fields moydom acts on
    are typed strictly (see :class:`Zigbee2MqttState`): a known field with the
    wrong type is ``invalid``, ``null`` means "not reported" (Zigbee2MQTT sends
    nulls for unknown values). Every other field (``illuminance``,
    ``device_temperature``, ``update``, ``last_seen``, ...) is accepted and kept,
    because a stock bridge sends dozens and they vary by device. Any report
    may carry any subset of fields; ``{}`` is accepted as ``telemetry``.
Native kinds (gate, intercom, alarm_panel, camera)
    moydom's own schema, strict and closed: see :mod:`devices.native`.

Keypad codes: ``action_code`` is the PIN a person typed. It is taken *out* of
``body`` (which is stored and shown in the history) and handed over in
:attr:`DeviceMessage.code`, for the alarm engine to check against its hash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from devices.kinds import DeviceKind
from devices.native import NATIVE_EVENTS, SCHEMAS, MilliVolts, NativeMessage, Percent
from devices.topics import Channel

MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 8
_MAX_ERROR_CHARS = 480
_T = TypeVar("_T")

KEYPAD_ACTIONS = frozenset(
    {
        "disarm",
        "arm_day_zones",
        "arm_night_zones",
        "arm_all_zones",
        "exit_delay",
        "emergency",
        "panic",
    }
)
"""The keypad actions Zigbee2MQTT's converters publish for alarm keypads. Other
non-empty strings are accepted too (keypads vary); the alarm engine decides
what an action it does not know means."""

ZIGBEE2MQTT_EVENTS = frozenset(
    {"availability", "telemetry", "tamper", "motion", "leak", "contact", "keypad_action", "siren"}
)


class PayloadError(ValueError):
    """A message that cannot be accepted; ``.reason`` is a short machine-readable
    code (``too_large``, ``not_utf8``, ``not_json``, ``not_object``, ``too_deep``,
    ``invalid``) and ``str(exc)`` a human-readable explanation."""

    reason: str

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Health(BaseModel):
    """The device-health fields a message carried; ``None`` when absent."""

    model_config = ConfigDict(frozen=True)

    battery: int | None = None  # %
    battery_low: bool | None = None
    voltage: int | None = None  # mV
    linkquality: int | None = None  # 0-255


class DeviceMessage(BaseModel):
    """One accepted message: its event class, the normalised payload to store,
    the health fields it carried, and for availability messages ``online``.
    ``code`` is a keypad's ``action_code`` (a PIN, ``""`` for none): never stored."""

    model_config = ConfigDict(frozen=True)

    event: str
    body: dict[str, Any]
    health: Health
    online: bool | None = None
    code: str | None = Field(default=None, repr=False)
    repeats: frozenset[str] = frozenset()
    """State fields whose value the device already reported (``devices.edges``):
    kept in ``body``, but not news to the alarm engine."""


class SirenWarning(BaseModel):
    """Zigbee2MQTT's ``warning`` object (as sent to a siren's ``/set``, and echoed by some)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    mode: Annotated[str, StringConstraints(max_length=32)] | None = None
    level: Annotated[str, StringConstraints(max_length=32)] | None = None
    strobe: bool | None = None
    duration: Annotated[int, Field(ge=0, le=65535)] | None = None


_Int32 = Annotated[int, Field(ge=0, le=2**31 - 1)]
_Short = Annotated[str, StringConstraints(max_length=64)]


class Zigbee2MqttState(BaseModel):
    """A Zigbee2MQTT device state message. ``contact: true`` means closed. ``battery`` and
    ``voltage`` accept floats and round them. ``action`` is any string up to 64
    characters (see :data:`KEYPAD_ACTIONS`); ``""`` is Zigbee2MQTT clearing the last
    action, not an action."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    occupancy: bool | None = None
    water_leak: bool | None = None
    contact: bool | None = None
    tamper: bool | None = None
    battery: Percent | None = None
    battery_low: bool | None = None
    voltage: MilliVolts | None = None
    linkquality: Annotated[int, Field(ge=0, le=255)] | None = None
    action: _Short | None = None
    action_code: Annotated[str, StringConstraints(max_length=32)] | None = None
    action_transaction: _Int32 | None = None
    action_zone: _Int32 | _Short | None = None
    warning: SirenWarning | None = None


class Availability(BaseModel):
    """``{"state": "online"|"offline"}``; other fields are kept."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    state: Literal["online", "offline"]


_MAIN_FIELDS: dict[DeviceKind, tuple[tuple[str, ...], str]] = {
    DeviceKind.MOTION: (("occupancy",), "motion"),
    DeviceKind.LEAK: (("water_leak",), "leak"),
    DeviceKind.CONTACT: (("contact",), "contact"),
    DeviceKind.KEYPAD: (("action",), "keypad_action"),
    DeviceKind.SIREN: (("alarm", "warning"), "siren"),
}
"""Per Zigbee2MQTT kind: the fields whose presence makes a report an event, and
its class. A siren reports ``alarm`` (a boolean) while it sounds; ``warning``
is what it is told on ``/set``, which some echo."""

EVENTS = ZIGBEE2MQTT_EVENTS | NATIVE_EVENTS
"""Every value of :attr:`DeviceMessage.event`: a class for filtering the history,
not the whole meaning (a ``motion`` report may also carry ``tamper: true``;
consumers read ``body``).

- ``availability``: online/offline, any kind (``DeviceMessage.online`` set).
- ``telemetry``: a Zigbee2MQTT report without its kind's main field (battery,
  link quality, a keypad's ``occupancy`` poll, an empty ``action``, ``{}``).
- ``motion``: ``occupancy`` reported by a motion sensor, or a camera's motion
  start/stop.
- ``leak``: ``water_leak`` reported (true or false).
- ``contact``: ``contact`` reported (true = closed).
- ``tamper``: ``tamper: true`` in a report without its kind's main field.
- ``keypad_action``: a non-empty keypad ``action``.
- ``siren``: a siren reported its ``alarm`` (sounding or not) or ``warning``.

For Zigbee2MQTT kinds ingest then keeps only what changed (``devices.edges``):
a report that repeats the values the device already reported is ``telemetry``.
- ``heartbeat``: a native device is alive.
- ``command_result``: a gate, intercom or panel answered a command.
- ``gate_state``: a gate or barrier moved or faulted.
- ``intercom_call``: a call started or ended.
- ``intercom_door``: the intercom's door was opened.
- ``panel_arm``, ``panel_zone``, ``panel_trouble``: an alarm panel's arm state,
  zone alarm or restore, trouble or restore.
"""


def parse(kind: DeviceKind, channel: Channel, payload: bytes) -> DeviceMessage:
    """Validate one MQTT payload from a device of ``kind`` on ``channel``."""
    if channel == Channel.SET:
        raise PayloadError("invalid", "the /set channel carries commands and is not ingested")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            "too_large", f"payload is {len(payload)} bytes, the limit is {MAX_PAYLOAD_BYTES}"
        )
    if channel == Channel.AVAILABILITY and payload in (b"online", b"offline"):
        online = payload == b"online"
        return DeviceMessage(
            event="availability", body={"state": payload.decode()}, health=Health(), online=online
        )
    data = _decode(payload)
    if channel == Channel.AVAILABILITY:
        availability = _validate(Availability.model_validate, data)
        return DeviceMessage(
            event="availability",
            body=availability.model_dump(mode="json"),
            health=Health(),
            online=availability.state == "online",
        )
    schema = SCHEMAS.get(kind)
    if schema is not None:
        native = _validate(schema.validate_python, data)
        assert isinstance(native, NativeMessage)
        body = native.model_dump(mode="json", exclude_unset=True)
        return DeviceMessage(
            event=native.category,
            body={"event": body.pop("event"), **body},
            health=_health(native),
        )
    if kind not in _MAIN_FIELDS:
        raise PayloadError("invalid", f"a {kind.value} reports on its bridge topics, not here")
    state = _validate(Zigbee2MqttState.model_validate, data)
    # The body is the object as published, without the PIN, and with the
    # numbers validation rounded: what ``state.model_dump(mode="json",
    # exclude_unset=True, exclude={"action_code"})`` returns (strict fields
    # keep their values as they are, extras are plain JSON), in the device's
    # own key order, without dumping the model. ``data`` is ours to change:
    # the model keeps its own copies.
    data.pop("action_code", None)
    for name in _ROUNDED:
        if name in data:
            data[name] = getattr(state, name)
    return DeviceMessage(
        event=event_class(kind, data), body=data, health=_health(state), code=state.action_code
    )


def event_class(
    kind: DeviceKind, body: Mapping[str, Any], ignore: frozenset[str] = frozenset()
) -> str:
    """The class of a Zigbee2MQTT report of ``kind``, not counting the fields in
    ``ignore`` (the ones that only repeat what the device reported before)."""
    fields, event = _MAIN_FIELDS[kind]
    for name in fields:
        if name not in ignore and _reported(name, body.get(name)):
            return event
    if "tamper" not in ignore and body.get("tamper") is True:
        return "tamper"
    return "telemetry"


def _reported(name: str, value: Any) -> bool:
    """A siren's ``alarm`` counts only as a boolean: it is not in the strict
    schema, because other devices use the name for other things."""
    if name == "alarm":
        return isinstance(value, bool)
    return value not in (None, "")


_ROUNDED = ("battery", "voltage")
"""The Zigbee2MQTT fields whose validated value may differ from the published one."""

_HEALTHS: dict[tuple[Any, ...], Health] = {}
_HEALTHS_MAX = 4096


def _health(model: BaseModel) -> Health:
    """The health fields of ``model``; frozen, so equal ones are shared (a sensor
    repeats the same few values), from a bounded cache."""
    key = (
        getattr(model, "battery", None),
        getattr(model, "battery_low", None),
        getattr(model, "voltage", None),
        getattr(model, "linkquality", None),
    )
    health = _HEALTHS.get(key)
    if health is None:
        if len(_HEALTHS) >= _HEALTHS_MAX:
            _HEALTHS.clear()
        health = _HEALTHS[key] = Health(
            battery=key[0], battery_low=key[1], voltage=key[2], linkquality=key[3]
        )
    return health


def _decode(payload: bytes) -> dict[str, Any]:
    """Bytes to a JSON object within the limits, or a PayloadError."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("not_utf8", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        data = _DECODER.decode(text)
    except RecursionError:
        raise PayloadError("too_deep", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an over-long integer
        raise PayloadError("not_json", f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise PayloadError("not_object", f"top level is a JSON {_json_type(data)}, not an object")
    # Walk the tree only if a check could fail: a node deeper than MAX_DEPTH
    # (_check_tree counts a value inside the deepest container as a level)
    # needs at least MAX_DEPTH "{" or "[" bytes, and a NUL or a lone
    # surrogate in a string needs a \u escape (the bytes are valid UTF-8, and
    # the decoder refuses raw control characters in strings).
    if b"\\u" in payload or payload.count(b"{") + payload.count(b"[") >= MAX_DEPTH:
        _check_tree(data)
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
"""What ``json.loads(text, parse_constant=…, parse_float=…)`` builds on every call."""


def _check_tree(data: dict[str, Any]) -> None:
    """Depth and string checks, iteratively: no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PayloadError("too_deep", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                _check_string(key)
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
        elif isinstance(node, str):
            _check_string(node)


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise PayloadError("invalid", "strings must not contain NUL (\\u0000)")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError("not_utf8", "a \\u escape encodes a lone surrogate") from None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _validate(validate: Callable[[Any], _T], data: dict[str, Any]) -> _T:
    try:
        return validate(data)
    except ValidationError as exc:
        raise PayloadError("invalid", _summarise(exc)) from None


def _summarise(exc: ValidationError) -> str:
    """The first few problems as ``field: message``, without the offending values."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    parts = []
    for error in errors[:3]:
        where = ".".join(str(part) for part in error["loc"])[:60] or "payload"
        parts.append(f"{where}: {error['msg']}")
    text = "; ".join(parts)
    if len(errors) > 3:
        text += f" (and {len(errors) - 3} more)"
    return text[:_MAX_ERROR_CHARS]
