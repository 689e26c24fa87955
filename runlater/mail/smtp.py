"""Sending one mail over SMTP with the standard library, and what a failure means.

``RUNLATER_SMTP_URL`` is ``smtp://user:pass@host:587`` (plain, upgraded with STARTTLS when the
server offers it) or ``smtps://user:pass@host:465`` (TLS from the first byte); user and
password are URL-decoded, and both are optional. ``send`` blocks: the mailer runs it in a
worker thread (``trio.to_thread.run_sync``). Every socket operation is bounded by
``timeout_s`` and the whole conversation by a deadline of the same length, checked before each
step. A failure is a :class:`SmtpFailure`: ``permanent`` when the server refused the mail
itself with a 5xx reply (sending it again would be refused again), otherwise transient
(connection refused or lost, timeouts, TLS trouble, 4xx replies, a refused login: those may
pass, or be fixed by the operator, and the mail is tried again).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit

from runlater.mail.message import Mail

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


class SmtpFailure(Exception):
    """Sending failed; ``permanent``: the server refused this mail for good (5xx)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where mails go, from ``RUNLATER_SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the password
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        return f"SmtpServer({scheme}://{user}{self.host}:{self.port})"


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://[user[:pass]@]host[:port]`` or ``smtps://...``; ValueError when it is not."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not an SMTP URL: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(
            "an SMTP URL starts with smtp:// (STARTTLS when offered) or smtps:// (TLS), "
            f"got scheme {parts.scheme!r}"
        )
    if not parts.hostname:
        raise ValueError("an SMTP URL names a host: smtp://user:pass@host:587")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an SMTP URL has no path, query or fragment")
    if port == 0:
        raise ValueError("an SMTP URL's port is 1-65535")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise ValueError("an SMTP URL with a password names the user too")
    return SmtpServer(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[parts.scheme],
        implicit_tls=parts.scheme == "smtps",
        username=username,
        password=password,
    )


def build_message(mail: Mail, *, sender: str, message_id: str) -> EmailMessage:
    """The MIME message of ``mail``: multipart/alternative, text then HTML, with ``Date`` now
    and the given ``Message-ID`` (``<id@domain>``; the same on every attempt)."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg


def _helo_name(msg: EmailMessage) -> str:
    """What to say in EHLO: the domain of the sender (smtplib's default asks the resolver for
    this machine's FQDN, which can hang)."""
    _, address = parseaddr(str(msg.get("From", "")))
    try:
        domain = Address(addr_spec=address).domain if address else ""
    except (ValueError, IndexError):
        domain = ""
    return domain or "localhost"


def _reply_failure(step: str, code: int, text: bytes | str) -> SmtpFailure:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return SmtpFailure(f"{step}: {code} {detail}".strip(), permanent=500 <= code < 600)


def send(
    url: str, msg: EmailMessage, *, timeout_s: float, tls_context: ssl.SSLContext | None = None
) -> None:
    """Deliver ``msg`` to the server of ``url`` (blocking; run it in a thread). Raises
    :class:`SmtpFailure`; returns once the server accepted the message. ``tls_context``:
    the system's trusted CAs and hostname checks unless given (tests give their own CA)."""
    try:
        server = parse_smtp_url(url)
    except ValueError as exc:  # the operator's to fix; the mail waits for it
        raise SmtpFailure(f"RUNLATER_SMTP_URL: {exc}", permanent=False) from None
    deadline = time.monotonic() + timeout_s
    smtp: smtplib.SMTP | None = None
    step = "connect"

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer within {timeout_s:g} s")
        if smtp is not None and smtp.sock is not None:
            smtp.sock.settimeout(remaining)
        return remaining

    context = tls_context or ssl.create_default_context()
    try:
        if server.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                server.host,
                server.port,
                local_hostname=_helo_name(msg),
                timeout=left(),
                context=context,
            )
        else:
            smtp = smtplib.SMTP(
                server.host, server.port, local_hostname=_helo_name(msg), timeout=left()
            )
        step = "EHLO"
        left()
        smtp.ehlo()
        if not server.implicit_tls and smtp.has_extn("starttls"):
            step = "STARTTLS"
            left()
            smtp.starttls(context=context)
            left()
            smtp.ehlo()
        if server.username is not None:
            step = "AUTH"
            left()
            try:
                smtp.login(server.username, server.password or "")
            except smtplib.SMTPAuthenticationError as exc:
                # The server refused our credentials: the operator's to fix, not this mail's
                # fault, so it is tried again.
                raise SmtpFailure(
                    f"AUTH: {exc.smtp_code} {exc.smtp_error!r}", permanent=False
                ) from None
            except smtplib.SMTPNotSupportedError:
                raise SmtpFailure(
                    "AUTH: the server offers no login (RUNLATER_SMTP_URL has a user)",
                    permanent=False,
                ) from None
        step = "send"
        left()
        try:
            smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            details = "; ".join(
                f"{rcpt}: {code} {text.decode('utf-8', 'replace')}"
                for rcpt, (code, text) in exc.recipients.items()
            )
            permanent = bool(codes) and all(500 <= c < 600 for c in codes)
            raise SmtpFailure(f"recipient refused: {details}", permanent=permanent) from None
        except smtplib.SMTPNotSupportedError as exc:  # e.g. a non-ASCII address, no SMTPUTF8
            raise SmtpFailure(f"send: {exc}", permanent=True) from None
    except SmtpFailure:
        _close(smtp)
        raise
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, HELO, ...
        _close(smtp)
        raise _reply_failure(step, exc.smtp_code, exc.smtp_error) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, lost, timed out, TLS
        _close(smtp)
        detail = str(exc) or type(exc).__name__
        raise SmtpFailure(f"{step}: {detail}", permanent=False) from None
    # Accepted: a failing QUIT changes nothing.
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(min(timeout_s, 5.0))
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        _close(smtp)


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()
