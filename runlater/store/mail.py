"""The mail outbox (migration 010's ``mails`` table, which is also the e-mail log).

``enqueue_mail`` is a unit of work for other store code: it writes a mail inside the caller's
own transaction, so the mail exists exactly when what caused it does. The mailer actor claims
due mails with a lease (``claim_mails``), sends them and records each outcome fenced by the
attempt it claimed (``finish_mails``); a node that dies while sending leaves the mail to be
claimed again once the lease has passed, with the same Message-ID.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import asyncpg

from runlater.store.base import StoreBase, execute_count, fetch, fetchval
from runlater.store.queries import Q
from runlater.store.records import Row

FINISH_STATUSES = frozenset({"sent", "logged", "failed", "pending"})
ERROR_MAX_CHARS = 2000


class OutgoingMail(Protocol):
    """What the store needs of a mail (``runlater.mail.message.Mail`` has it; the store does
    not import the layers above it)."""

    @property
    def kind(self) -> str: ...

    @property
    def to(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def html(self) -> str: ...


async def enqueue_mail(
    conn: asyncpg.Connection, mail: OutgoingMail, *, organization_id: UUID | None, domain: str
) -> UUID:
    """Write ``mail`` to the outbox on ``conn`` (call it inside your transaction) and wake the
    mailers when that transaction commits. Its Message-ID is ``<{id}@{domain}>``. Returns the
    row id."""
    found = await conn.fetchrow(
        Q.enqueue_mail,
        organization_id,
        mail.kind,
        mail.to,
        mail.subject,
        mail.text,
        mail.html,
        domain,
    )
    mail_id: UUID = found["id"]
    return mail_id


@dataclass(frozen=True, slots=True)
class MailResult:
    """The outcome of one claimed attempt: ``status`` is ``sent``, ``logged`` (no SMTP server
    configured: written to the log), ``failed`` (for good) or ``pending`` (again after
    ``retry_in_s``). ``attempt`` is the claim's ``attempts``: the write is fenced by it."""

    mail_id: UUID
    attempt: int
    status: str
    error: str | None = None
    retry_in_s: float = 0.0


class MailStore(StoreBase):
    async def claim_mails(self, limit: int, lease_s: float) -> list[Row]:
        """Up to ``limit`` due mails, leased ``lease_s`` seconds (status ``sending``, one more
        attempt counted): ``id``, ``organization_id``, ``kind``, ``to_address``, ``subject``,
        ``text_body``, ``html_body``, ``message_id``, ``attempts``."""
        rows: list[Row] = await self._run(fetch, Q.claim_mails, limit, lease_s)
        return rows

    async def finish_mails(self, results: Sequence[MailResult]) -> int:
        """Record outcomes; only mails still ``sending`` in the claimed attempt change.
        Returns how many did."""
        if not results:
            return 0
        for r in results:
            if r.status not in FINISH_STATUSES:
                raise ValueError(f"a mail outcome is one of {sorted(FINISH_STATUSES)}")
        rows = await self._run(
            fetch,
            Q.finish_mails,
            [r.mail_id for r in results],
            [r.attempt for r in results],
            [r.status for r in results],
            [None if r.error is None else r.error[:ERROR_MAX_CHARS] for r in results],
            [r.retry_in_s for r in results],
        )
        return len(rows)

    async def next_mail_due_in(self) -> float | None:
        """Seconds until the next mail is due (<= 0: now), None when none waits."""
        due: float | None = await self._run(fetchval, Q.next_mail_due_in_s)
        return due

    async def list_mails(self, limit: int = 50, offset: int = 0) -> list[Row]:
        """The e-mail log, newest first, without bodies."""
        rows: list[Row] = await self._run(fetch, Q.list_mails, limit, offset)
        return rows

    async def get_mail(self, mail_id: UUID) -> Row:
        """One mail with its bodies; NotFound when it is not (or no longer) there."""
        return await self._one("mail not found", Q.get_mail, mail_id)

    async def purge_mails(self, older_than_days: int = 30, limit: int = 10_000) -> int:
        """Delete up to ``limit`` finished mails older than ``older_than_days``; how many."""
        deleted: int = await self._run(execute_count, Q.purge_mails, older_than_days, limit)
        return deleted
