"""E-mail and SMS transports against real local servers.

SMTP: aiosmtpd on 127.0.0.1, refusing some recipients as a real server would.
SMS: a stdlib HTTP server in a thread standing in for the provider, recording
each request and answering with whatever status the test asks for.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.notify.email import EmailMessage, SmtpSender
from gateway.notify.errors import NotificationError
from gateway.notify.sms import HttpSmsSender, SmsSender
from tests.support import free_port

SENDER = "Мой дом <noreply@moydom.example>"
SUBJECT = "Протечка воды: Кухня"
BODY = "Датчик «Кухня» обнаружил воду в 03:12.\nПроверьте квартиру.\n"


class Mailbox:
    """An aiosmtpd handler: refuses ``nobody@`` (550) and ``busy@`` (450), keeps the rest."""

    def __init__(self) -> None:
        self.received: queue.Queue[Envelope] = queue.Queue()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user here"
        if address.startswith("busy@"):
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.put(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def _parse(envelope: Envelope) -> email.message.EmailMessage:
    assert isinstance(envelope.content, bytes)
    parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_email_arrives_intact_with_cyrillic_and_a_stable_message_id(
    smtp_server: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp_server
    sender = SmtpSender("127.0.0.1", port, SENDER)
    msg = EmailMessage("Абонент <subscriber@example.org>", SUBJECT, BODY, "alert-42.email")

    asyncio.run(sender.send(msg))
    asyncio.run(sender.send(msg))  # the outbox re-sending after a crash

    first, again = mailbox.received.get(timeout=5), mailbox.received.get(timeout=5)
    assert first.mail_from == "noreply@moydom.example"
    assert first.rcpt_tos == ["subscriber@example.org"]
    parsed = _parse(first)
    assert parsed["Subject"] == SUBJECT
    assert parsed["From"] == SENDER
    assert parsed["To"] == "Абонент <subscriber@example.org>"
    assert parsed["Message-ID"] == "<alert-42.email@moydom.example>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    # MIME text travels with CRLF line ends (canonical form); the words are intact.
    assert parsed.get_content().replace("\r\n", "\n") == BODY
    assert _parse(again)["Message-ID"] == parsed["Message-ID"]
    # 7-bit on the wire: no server needs 8BITMIME for Russian text.
    assert isinstance(first.content, bytes)
    assert first.content.isascii()


def test_refused_recipient_is_a_permanent_error(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    sender = SmtpSender("127.0.0.1", port, SENDER)
    msg = EmailMessage("nobody@example.org", SUBJECT, BODY, "alert-43")
    with pytest.raises(NotificationError) as err:
        asyncio.run(sender.send(msg))
    assert err.value.permanent is True
    assert "550" in err.value.reason
    assert mailbox.received.empty()


def test_busy_recipient_is_a_temporary_error(smtp_server: tuple[Mailbox, int]) -> None:
    _, port = smtp_server
    sender = SmtpSender("127.0.0.1", port, SENDER)
    with pytest.raises(NotificationError) as err:
        asyncio.run(sender.send(EmailMessage("busy@example.org", SUBJECT, BODY, "alert-44")))
    assert err.value.permanent is False
    assert "450" in err.value.reason


def test_server_down_is_a_temporary_error() -> None:
    sender = SmtpSender("127.0.0.1", free_port(), SENDER, timeout_s=2)
    started = time.monotonic()
    with pytest.raises(NotificationError) as err:
        asyncio.run(sender.send(EmailMessage("a@example.org", SUBJECT, BODY, "alert-45")))
    assert err.value.permanent is False
    assert time.monotonic() - started < 2


def test_starttls_required_but_not_offered_sends_nothing(
    smtp_server: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp_server
    sender = SmtpSender("127.0.0.1", port, SENDER, starttls=True)
    with pytest.raises(NotificationError) as err:
        asyncio.run(sender.send(EmailMessage("a@example.org", SUBJECT, BODY, "alert-46")))
    assert err.value.permanent is False
    assert mailbox.received.empty()


def test_login_with_the_configured_account() -> None:
    mailbox = Mailbox()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        good = SmtpSender("127.0.0.1", port, SENDER, username="moydom", password="s3cret")
        asyncio.run(good.send(EmailMessage("a@example.org", SUBJECT, BODY, "alert-47")))
        assert _parse(mailbox.received.get(timeout=5))["Subject"] == SUBJECT

        bad = SmtpSender("127.0.0.1", port, SENDER, username="moydom", password="wrong")
        with pytest.raises(NotificationError) as err:
            asyncio.run(bad.send(EmailMessage("a@example.org", SUBJECT, BODY, "alert-48")))
        assert err.value.permanent is False  # our account, not the message
        assert (b"moydom", b"s3cret") in logins
    finally:
        controller.stop()


@pytest.mark.parametrize("to", ["not an address", "a@example.org\nBcc: b@example.org"])
def test_unwritable_recipient_is_a_permanent_error(
    smtp_server: tuple[Mailbox, int], to: str
) -> None:
    mailbox, port = smtp_server
    sender = SmtpSender("127.0.0.1", port, SENDER)
    with pytest.raises(NotificationError) as err:
        asyncio.run(sender.send(EmailMessage(to, SUBJECT, BODY, "alert-49")))
    assert err.value.permanent is True
    assert mailbox.received.empty()


def test_a_whole_message_id_is_sent_as_it_is(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    sender = SmtpSender("127.0.0.1", port, SENDER)
    asyncio.run(sender.send(EmailMessage("a@example.org", SUBJECT, BODY, "<alert-9-email@moydom>")))
    assert _parse(mailbox.received.get(timeout=5))["Message-ID"] == "<alert-9-email@moydom>"


@pytest.mark.parametrize(
    "key", ["", "outbox:42", "a..b", "<x>", "<x@y", "x@y", "<a b@y>", "с-кириллицей"]
)
def test_message_id_must_be_a_msg_id(key: str) -> None:
    with pytest.raises(ValueError, match="message_id"):
        EmailMessage("a@example.org", SUBJECT, BODY, key)


@dataclass
class Provider:
    """The SMS provider's stand-in: records requests, answers ``statuses`` in turn (then 200)."""

    port: int
    requests: queue.Queue[tuple[str, dict[str, str], Any]] = field(default_factory=queue.Queue)
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/sms"


def _provider_handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            provider.requests.put((self.path, dict(self.headers.items()), json.loads(body)))
            time.sleep(provider.delay_s)
            status = provider.statuses.pop(0) if provider.statuses else 200
            answer = json.dumps({"status": status, "error": "test answer"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@pytest.fixture
def provider() -> Iterator[Provider]:
    provider = Provider(free_port())
    server = ThreadingHTTPServer(("127.0.0.1", provider.port), _provider_handler(provider))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield provider
    server.shutdown()
    server.server_close()
    thread.join(5)


async def _send_sms(sender: HttpSmsSender, to: str, text: str, key: str) -> None:
    as_protocol: SmsSender = sender  # HttpSmsSender is an SmsSender
    try:
        await as_protocol.send(to, text, key)
    finally:
        await sender.aclose()


def test_sms_is_posted_with_auth_idempotency_key_and_json(provider: Provider) -> None:
    sender = HttpSmsSender(provider.url, "api-key-1")
    asyncio.run(_send_sms(sender, "+79130000001", "Протечка: Кухня", "alert-42.sms"))
    path, headers, body = provider.requests.get(timeout=5)
    assert path == "/v1/sms"
    assert headers["Authorization"] == "Bearer api-key-1"
    assert headers["Idempotency-Key"] == "alert-42.sms"
    assert headers["Content-Type"] == "application/json"
    assert body == {"to": "+79130000001", "text": "Протечка: Кухня", "id": "alert-42.sms"}


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (500, False),
        (503, False),
        (429, False),
        (408, False),
        (401, False),
        (400, True),
        (422, True),
    ],
)
def test_sms_provider_answers(provider: Provider, status: int, permanent: bool) -> None:
    provider.statuses.append(status)
    sender = HttpSmsSender(provider.url, "api-key-1")
    with pytest.raises(NotificationError) as err:
        asyncio.run(_send_sms(sender, "+79130000001", "text", "k1"))
    assert err.value.permanent is permanent
    assert str(status) in err.value.reason


def test_sms_retry_carries_the_same_key(provider: Provider) -> None:
    provider.statuses.append(503)
    sender = HttpSmsSender(provider.url, "api-key-1")

    async def outbox_like() -> None:
        try:
            with pytest.raises(NotificationError):
                await sender.send("+79130000001", "text", "alert-7.sms")
            await sender.send("+79130000001", "text", "alert-7.sms")
        finally:
            await sender.aclose()

    asyncio.run(outbox_like())
    keys = [provider.requests.get(timeout=5)[1]["Idempotency-Key"] for _ in range(2)]
    assert keys == ["alert-7.sms", "alert-7.sms"]


def test_sms_provider_down_is_temporary() -> None:
    sender = HttpSmsSender(f"http://127.0.0.1:{free_port()}/v1/sms", "api-key-1")
    with pytest.raises(NotificationError) as err:
        asyncio.run(_send_sms(sender, "+79130000001", "text", "k1"))
    assert err.value.permanent is False


def test_sms_provider_too_slow_is_temporary(provider: Provider) -> None:
    provider.delay_s = 1.0
    sender = HttpSmsSender(provider.url, "api-key-1", timeout_s=0.2)
    with pytest.raises(NotificationError) as err:
        asyncio.run(_send_sms(sender, "+79130000001", "text", "k1"))
    assert err.value.permanent is False
