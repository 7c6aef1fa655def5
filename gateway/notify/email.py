"""E-mail notifications over SMTP.

The stdlib's ``smtplib`` does the protocol, in a worker thread so the event loop
never waits on a mail server. Each send is one connection and one attempt;
the outbox retries. The Message-ID comes from the outbox key rather than from
the clock, so a message re-sent after a crash is the same message to the
recipient's mail system, which can then drop the copy.

Messages are 7-bit clean on the wire (UTF-8 bodies and subjects are
MIME-encoded), so Russian text survives servers without 8BITMIME.
"""

from __future__ import annotations

import asyncio
import email.message
import email.policy
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr

from gateway.notify.errors import NotificationError

# RFC 5322 msg-id, "<dot-atom@dot-atom>" (the forms without folding or literals).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_ID_LEFT = re.compile(_DOT_ATOM)
_MSG_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


@dataclass(frozen=True)
class EmailMessage:
    """One notification e-mail.

    ``message_id`` is the outbox key, either a whole RFC 5322 msg-id
    (``<alert-42@moydom>``, sent as it is) or just its left part
    (``alert-42``, sent as ``<alert-42@sender-domain>``). The left part must
    be dot-atom text: letters, digits, dots and ``!#$%&'*+-/=?^_`{|}~``.
    Anything else raises ``ValueError``.
    """

    to: str
    subject: str
    body: str
    message_id: str

    def __post_init__(self) -> None:
        if not (_ID_LEFT.fullmatch(self.message_id) or _MSG_ID.fullmatch(self.message_id)):
            raise ValueError(f"message_id is not an RFC 5322 msg-id: {self.message_id!r}")


class SmtpSender:
    """Sends ``EmailMessage``s through one SMTP server as ``sender``.

    Errors are ``NotificationError``; permanent only when the refusal is about
    the message itself: its recipient (a 5xx to RCPT), its content (a 5xx to
    DATA) or an address that cannot be written. Connection failures, 4xx
    replies and our own account's problems (login, a refused sender,
    STARTTLS) are temporary: the message is fine, the operator fixes the rest.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_s: float = 10,
    ) -> None:
        domain = parseaddr(sender)[1].rpartition("@")[2]
        if not domain:
            raise ValueError(f"sender must be an e-mail address, not {sender!r}")
        self._host = host
        self._port = port
        self._sender = sender
        self._domain = domain
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout_s = timeout_s

    async def send(self, msg: EmailMessage) -> None:
        """Hand ``msg`` to the SMTP server, or raise ``NotificationError``."""
        await asyncio.to_thread(self._send_blocking, msg)

    def _build(self, msg: EmailMessage) -> email.message.EmailMessage:
        if "@" not in parseaddr(msg.to)[1]:
            raise NotificationError(f"not an e-mail address: {msg.to!r}", permanent=True)
        message = email.message.EmailMessage(policy=_POLICY)
        try:
            message["From"] = self._sender
            message["To"] = msg.to
            message["Subject"] = msg.subject
        except ValueError as exc:  # a CR or LF smuggled into a header
            raise NotificationError(f"cannot write the message: {exc}", permanent=True) from exc
        message["Message-ID"] = (
            msg.message_id
            if msg.message_id.startswith("<")
            else f"<{msg.message_id}@{self._domain}>"
        )
        message["Date"] = format_datetime(datetime.now(UTC))
        # RFC 3834: no vacation auto-replies to a machine.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(msg.body)
        return message

    def _send_blocking(self, msg: EmailMessage) -> None:
        message = self._build(msg)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username is not None:
                    smtp.login(self._username, self._password or "")
                try:
                    smtp.send_message(message)
                except smtplib.SMTPNotSupportedError as exc:  # needs SMTPUTF8
                    raise NotificationError(f"server cannot take: {exc}", permanent=True) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            reason = f"recipient refused: {code} {text.decode(errors='replace')}"
            raise NotificationError(reason, permanent=code >= 500) from exc
        except smtplib.SMTPDataError as exc:
            reason = f"message refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            raise NotificationError(reason, permanent=exc.smtp_code >= 500) from exc
        except smtplib.SMTPResponseException as exc:
            reason = f"smtp {exc.smtp_code} {_text(exc.smtp_error)}"
            raise NotificationError(reason, permanent=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            reason = f"smtp {self._host}:{self._port}: {str(exc) or type(exc).__name__}"
            raise NotificationError(reason, permanent=False) from exc


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply
