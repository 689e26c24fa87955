"""SMTP servers for the mail tests: a real one (aiosmtpd, in its own thread and event loop)
that keeps what it receives, and a TCP server that accepts and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.helpers.process import free_port

REFUSED_DOMAIN = "refused.test"  # RCPT to this domain gets 550 (for good)
BUSY_DOMAIN = "busy.test"  # RCPT to this domain gets 451 (try again later)


@dataclass
class Inbox:
    """What an aiosmtpd server received: each message, parsed, with its envelope."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)  # per message: did it come over TLS
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    # aiosmtpd handler hooks (run in the server's thread)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            return "550 5.1.1 No such user here"
        if address.lower().endswith("@" + BUSY_DOMAIN):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
            self.recipients.append(list(envelope.rcpt_tos))
            transport = server.transport
            self.tls.append(
                transport is not None and transport.get_extra_info("ssl_object") is not None
            )
        return "250 Message accepted for delivery"


class Credentials:
    """An aiosmtpd authenticator that takes one user and password. On failure it must answer
    ``handled=False`` (aiosmtpd then sends the 535 reply itself); otherwise the client waits
    for a reply that never comes."""

    def __init__(self, inbox: Inbox, user: str, password: str) -> None:
        self.inbox, self.user, self.password = inbox, user, password

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            if (login, password) == (self.user, self.password):
                with self.inbox.lock:
                    self.inbox.logins.append((login, password))
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@contextmanager
def smtp_server(
    port: int | None = None,
    *,
    user: str | None = None,
    password: str | None = None,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
) -> Iterator[tuple[Inbox, int]]:
    """A running SMTP server on 127.0.0.1 (``port`` or a free one): its inbox and its port.
    With ``user``, AUTH is required, over plain TCP (the test has no certificate; aiosmtpd
    warns about it: mark the test ``filterwarnings("ignore:Requiring AUTH ...")``).
    ``starttls``: the server's TLS context, offered with STARTTLS; ``implicit_tls``: TLS from
    the first byte (smtps)."""
    inbox = Inbox()
    port = port or free_port()
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs.update(
            authenticator=Credentials(inbox, user, password or ""),
            auth_required=True,
            auth_require_tls=False,
        )
    if starttls is not None:
        kwargs.update(tls_context=starttls)
    if implicit_tls is not None:
        kwargs.update(ssl_context=implicit_tls)
    # A plain asyncio loop of its own (made directly: inside a trio test, trio-asyncio's
    # policy refuses asyncio.new_event_loop()); the controller runs it in its thread.
    loop = asyncio.SelectorEventLoop()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, loop=loop, ready_timeout=10, **kwargs
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class HangingServer:
    """Accepts TCP connections and never sends a byte (an SMTP server that hangs before its
    greeting). ``connections`` counts the accepted ones."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="hanging-smtp", daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self.lock:
            return len(self.held)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            with self.lock:
                self.held.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.sock.close()
        with self.lock:
            for conn in self.held:
                conn.close()
        self._thread.join(5)
