"""User codes as the panel sees them: already checked by the caller (which holds
the hashes), counted here.

- A wrong code is refused and counted; ``lockout_after`` in a row lock every
  keypad and the app out of codes for ``lockout_s`` (CodeLockout, and a silent
  WRONG_CODE alarm, 461, so dispatch sees someone guessing). While locked out
  every code is refused, even a valid one, and not counted; a valid code resets
  the count.
- A duress code acts exactly like a valid one — same effects, same keypad
  reply — and also raises a silent DURESS alarm (121). It raises it even while
  locked out: the person typing it may have no other way to call for help.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alarms.contactid import CONTACT_ID
from alarms.effects import AlarmRaised, CodeLockout
from alarms.keypad import INVALID_CODE
from alarms.model import AlarmType, CodeCheck, Source
from alarms.run import Run


@dataclass(frozen=True)
class Verdict:
    """A request may go ahead, on behalf of ``user``."""

    user: str | None
    duress: bool = False


def authorise(
    run: Run, code: CodeCheck, source: Source, now: datetime, *, required: bool, reply: bool
) -> Verdict | None:
    """Whether a request with ``code`` may go ahead; ``None`` means refused, with
    the refusal (and for a keypad, when ``reply``, its answer) already emitted.

    A typed code is always checked, even where none is required: a wrong one is
    a guess and counts towards the lockout.
    """
    state = run.state
    answer = INVALID_CODE if reply else None
    if code.result == "absent":
        if not required:
            return Verdict(user=code.user)
        locked = state.locked_until is not None
        run.refuse("locked_out" if locked else "code_required", source, now, reply=answer)
        return None
    if code.result == "duress":
        _raise_duress(run, code, source, now)
    if state.locked_until is not None:
        run.refuse("locked_out", source, now, reply=answer)
        return None
    if code.result == "wrong":
        _count_wrong(run, source, now, answer)
        return None
    state.failed_codes = 0
    return Verdict(user=code.user, duress=code.result == "duress")


def end_lockout(run: Run) -> None:
    """The lockout time is over: codes are taken again, counted from zero."""
    run.state.locked_until = None
    run.state.failed_codes = 0


def _raise_duress(run: Run, code: CodeCheck, source: Source, now: datetime) -> None:
    run.emit(
        AlarmRaised(
            alarm=AlarmType.DURESS,
            contact_id=CONTACT_ID[AlarmType.DURESS],
            zone=source.device,
            at=now,
            silent=True,
            user=code.user,
        )
    )


def _count_wrong(run: Run, source: Source, now: datetime, answer: str | None) -> None:
    state = run.state
    state.failed_codes += 1
    run.refuse("wrong_code", source, now, reply=answer)
    if state.failed_codes < run.config.lockout_after:
        return
    until = now + timedelta(seconds=run.config.lockout_s)
    state.locked_until = until
    run.emit(CodeLockout(at=now, until=until))
    run.emit(
        AlarmRaised(
            alarm=AlarmType.WRONG_CODE,
            contact_id=CONTACT_ID[AlarmType.WRONG_CODE],
            zone=source.device,
            at=now,
            silent=True,
        )
    )
