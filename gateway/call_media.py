"""An intercom call's media: the panel's picture and sound to the called home's members, and
the answering member's microphone to the panel.

Who gets what, decided from the call's row (never from the request's say-so):

- the call belongs to the home it was routed to, so only that home's contract may open media of
  it — another contract's call, or a call that does not exist, is a plain ``NotFound``; the panel
  itself is often the operator's device (a shared entrance), which grants nothing;
- while the call rings, every member may watch and hear the visitor; nobody is heard;
- once a member answers, that member's sessions carry their microphone to the panel's back-channel
  (:class:`recorder.backchannel.Talk`), and the other members' sessions end («отвечено»);
- when the call ends (hung up, declined, missed), every session of it ends.

A member is named as the answer names it (``CallAnswer.member``, the contract number by default):
today every login of a contract is its owner, so the member name tells the family's phones apart,
not who may see — that is the contract, checked on every request and re-check.

Each session follows its call (:func:`follow`): the call's changes arrive on the live hub as
they are committed (the same messages that ring the members' streams), and the row is re-read
every ``recheck_s`` besides, so a lost message or a process without a hub costs at most that long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Histogram
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.intercom_models import Call, CallState
from gateway.db.models import Device
from gateway.errors import Conflict, NotFound
from gateway.intercom.views import CallView
from gateway.live import EventHub, Subscription
from recorder.backchannel import BackChannelError, Talk
from recorder.live_rtc import LiveSessions

log = logging.getLogger(__name__)

LIVE = (CallState.RINGING, CallState.ANSWERED)
FIRST_AUDIO = Histogram(
    "moydom_call_first_audio_seconds",
    "From a call's answer to the first packet of the member's voice sent to the panel",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5),
)


@dataclass(frozen=True)
class CallPanel:
    """A live call of the caller's contract and the panel's stream to open for it."""

    call_id: int
    contract_id: int
    panel: str
    """The panel's device id: the relay's key, so all calls of a panel share one upstream."""
    rtsp_url: str


@dataclass(frozen=True)
class CallNow:
    """What decides a session's fate: the call's state and who answered."""

    state: str
    answered_by: str | None
    answered_at: datetime | None = None


def media_of_call(session: Session, contract_id: int, call_id: int, member: str) -> CallPanel:
    """The call's panel stream, if ``member`` of ``contract_id`` may have it now: ``NotFound``
    for another contract's call, ``Conflict`` for a call that is over or answered by someone
    else, ``NotFound`` for a panel without a camera."""
    call = session.get(Call, call_id)
    if call is None or call.contract_id != contract_id:
        raise NotFound(f"no call {call_id}")
    refusal = _refusal(CallNow(call.state, call.answered_by, call.answered_at), member)
    if refusal is not None:
        raise Conflict(f"call {call_id} {refusal}")
    panel = session.get(Device, call.device_id)
    if panel is None or panel.deleted_at is not None or not panel.rtsp_url:
        raise NotFound(f"the panel of call {call_id} has no camera")
    return CallPanel(call.id, call.contract_id, panel.uid, panel.rtsp_url)


def _refusal(call: CallNow, member: str) -> str | None:
    """Why ``member`` may not have the call's media now, or ``None`` if they may."""
    if call.state not in LIVE:
        return f"is {call.state}"
    if call.state == CallState.ANSWERED and call.answered_by != member:
        return "was answered by another member (отвечено)"
    return None


def _state_of(db: Database, call_id: int) -> CallNow:
    with db.session() as session:
        call = session.get(Call, call_id)
        if call is None:
            return CallNow("gone", None)
        return CallNow(call.state, call.answered_by, call.answered_at)


async def follow(
    sessions: LiveSessions,
    session_id: str,
    call: CallPanel,
    member: str,
    talk: Talk,
    *,
    db: Database,
    hub: EventHub | None,
    recheck_s: float,
) -> None:
    """Keep one media session in step with its call until the session or the call ends."""
    sub = hub.subscribe(call.contract_id) if hub is not None else None
    try:
        state = await asyncio.to_thread(_state_of, db, call.call_id)  # after subscribing
        while True:
            refusal = _refusal(state, member)
            if refusal is not None:
                await sessions.terminate(session_id, f"call {call.call_id} {refusal}")
                return
            if state.state == CallState.ANSWERED and talk.channel is None:
                await _talk(talk, call, state.answered_at)
            state = await _next_state(db, call.call_id, sub, recheck_s)
    except Exception:  # fail closed: a session that cannot follow its call ends
        log.exception("call %s: following the call failed", call.call_id)
        await sessions.terminate(session_id, "following the call failed")
    finally:
        if hub is not None and sub is not None:
            hub.unsubscribe(sub)


async def _talk(talk: Talk, call: CallPanel, answered_at: datetime | None) -> None:
    if answered_at is not None:
        answered = answered_at.timestamp()
        talk.on_first = lambda: FIRST_AUDIO.observe(max(time.time() - answered, 0.0))
    try:
        await talk.start()
    except BackChannelError as exc:  # still seen and heard; tried again at the next change or check
        if talk.refused is None:
            log.warning("call %s: cannot talk to panel %s: %s", call.call_id, call.panel, exc)
        talk.refused = str(exc)
    else:
        log.info("call %s: the member's microphone goes to panel %s", call.call_id, call.panel)


async def _next_state(
    db: Database, call_id: int, sub: Subscription | None, recheck_s: float
) -> CallNow:
    """The call's next state from the hub, or re-read after ``recheck_s`` without news."""
    queue = sub.queue if sub is not None else None
    deadline = asyncio.get_running_loop().time() + recheck_s
    while queue is not None:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        try:
            item = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            break
        if isinstance(item, CallView) and item.id == call_id:
            return CallNow(item.state, item.answered_by, item.answered_at)
    if queue is None:
        await asyncio.sleep(recheck_s)
    return await asyncio.to_thread(_state_of, db, call_id)
