"""Mailer: sends the mails of the outbox (the ``mails`` table, migration 010).

Mailbox: ``Wake`` (NOTIFY ``runlater_mail`` from the statement that wrote a mail, delivered
when its transaction commits); otherwise polls every ``poll_s``. Emits: nothing. Runs on every
node: claims are ``FOR UPDATE SKIP LOCKED`` and leased, outcomes are fenced by the attempt
that was claimed, so two nodes never send one claim twice.

Each claimed mail is sent with ``smtplib`` in a worker thread, bounded by ``SEND_TIMEOUT_S``
(every socket operation and the whole conversation); the lease is longer than that. Without
``RUNLATER_SMTP_URL`` nothing is sent: the mail is written to the server log (INFO, with its
whole text part, links included) and recorded as ``logged``.

Retries: a transient failure (connection refused or lost, timeout, 4xx) is tried again after
``RETRY_DELAYS_S``; a 5xx refusal of the mail, or ``MAX_ATTEMPTS`` attempts, mark it
``failed``. A node that dies (or is stopped) while sending leaves the mail ``sending`` until
its lease passes; then any node sends it again, with the same Message-ID — the one case in
which a recipient may get a mail twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from runlater.actors.loop import run_periodic
from runlater.actors.messages import Wake
from runlater.mail import smtp
from runlater.mail.message import Mail
from runlater.store.mail import MailResult
from runlater.store.ports import MailStore

log = logging.getLogger("runlater.actors.mailer")

BATCH = 10
MAX_ATTEMPTS = 8
# After attempt 1, 2, ...: about 40 minutes from the first attempt to the last.
RETRY_DELAYS_S = (5.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)
SEND_TIMEOUT_S = 30.0
LEASE_MARGIN_S = 30.0  # the lease outlasts a send that uses all its time, and its recording

SendFn = Callable[..., None]


@dataclass(frozen=True, slots=True)
class MailerResult:
    claimed: int
    sent: int = 0
    logged: int = 0
    retrying: int = 0
    failed: int = 0


def retry_delay_s(attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1-based)."""
    return RETRY_DELAYS_S[min(max(attempt, 1), len(RETRY_DELAYS_S)) - 1]


class Mailer:
    def __init__(
        self,
        store: MailStore,
        *,
        smtp_url: str | None,
        sender: str,
        poll_s: float = 1.0,
        mailbox: trio.MemoryReceiveChannel[Wake] | None = None,
        batch: int = BATCH,
        send_timeout_s: float = SEND_TIMEOUT_S,
        send: SendFn = smtp.send,
    ) -> None:
        self.store = store
        self.smtp_url = smtp_url
        self.sender = sender
        self.poll_s = poll_s
        self.mailbox = mailbox
        self.batch = batch
        self.send_timeout_s = send_timeout_s
        self.lease_s = send_timeout_s + LEASE_MARGIN_S
        self._send = send
        # Its own threads: a send never waits for a thread behind other work (its lease runs).
        self._threads = trio.CapacityLimiter(batch)

    async def run_once(self) -> MailerResult:
        """Claim the due mails, send (or log) each, record the outcomes."""
        rows = await self.store.claim_mails(self.batch, self.lease_s)
        if not rows:
            return MailerResult(0)
        results: list[MailResult] = []

        async def one(row: dict[str, Any]) -> None:
            results.append(await self._deliver(row))

        async with trio.open_nursery() as nursery:
            for row in rows:
                nursery.start_soon(one, row)
        await self.store.finish_mails(results)
        count = {s: sum(r.status == s for r in results) for s in ("sent", "logged", "pending")}
        return MailerResult(
            len(rows),
            sent=count["sent"],
            logged=count["logged"],
            retrying=count["pending"],
            failed=sum(r.status == "failed" for r in results),
        )

    async def _deliver(self, row: dict[str, Any]) -> MailResult:
        mail = Mail(
            kind=row["kind"],
            to=row["to_address"],
            subject=row["subject"],
            text=row["text_body"],
            html=row["html_body"],
        )
        mail_id, attempt = row["id"], row["attempts"]
        fields = {
            "mail": str(mail_id),
            "kind": mail.kind,
            "to": mail.to,
            "subject": mail.subject,
            "message_id": row["message_id"],
            "attempt": attempt,
        }
        if self.smtp_url is None:
            log.info(
                "mail not sent (RUNLATER_SMTP_URL is not set); its text follows",
                extra={"fields": {**fields, "text": mail.text}},
            )
            return MailResult(mail_id, attempt, "logged")
        try:
            msg = smtp.build_message(mail, sender=self.sender, message_id=row["message_id"])
        except Exception as exc:  # a mail no SMTP server could take: never sent
            return self._failed(mail_id, attempt, fields, f"message: {exc}")
        try:
            await trio.to_thread.run_sync(
                functools.partial(self._send, self.smtp_url, msg, timeout_s=self.send_timeout_s),
                # Cancelled (the node stops): the send may still finish in its thread, and
                # the mail stays 'sending' until its lease passes, as after a crash.
                abandon_on_cancel=True,
                limiter=self._threads,
            )
        except smtp.SmtpFailure as exc:
            if exc.permanent:
                return self._failed(mail_id, attempt, fields, str(exc))
            return self._retry(mail_id, attempt, fields, str(exc))
        except Exception as exc:  # a bug in sending must not stop the mailer
            log.exception("mail send raised", extra={"fields": fields})
            return self._retry(mail_id, attempt, fields, f"{type(exc).__name__}: {exc}")
        log.info("mail sent", extra={"fields": fields})
        return MailResult(mail_id, attempt, "sent")

    def _retry(self, mail_id: Any, attempt: int, fields: dict[str, Any], error: str) -> MailResult:
        if attempt >= MAX_ATTEMPTS:
            return self._failed(mail_id, attempt, fields, error)
        delay = retry_delay_s(attempt)
        log.warning(
            "mail not sent, will retry",
            extra={"fields": {**fields, "error": error, "retry_in_s": delay}},
        )
        return MailResult(mail_id, attempt, "pending", error, delay)

    def _failed(self, mail_id: Any, attempt: int, fields: dict[str, Any], error: str) -> MailResult:
        log.warning("mail failed for good", extra={"fields": {**fields, "error": error}})
        return MailResult(mail_id, attempt, "failed", error)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run_periodic("mailer", self._pass, mailbox=self.mailbox)

    async def _pass(self) -> float:
        """One pass; at once again after a full one, else until the next mail is due (at most
        ``poll_s``)."""
        result = await self.run_once()
        if result.claimed == self.batch:
            return 0.0
        due_in = await self.store.next_mail_due_in()
        return self.poll_s if due_in is None else min(self.poll_s, max(0.05, due_in))
