"""Notifier: turns notification events into notifications and sends them.

Mailbox: ``Wake`` (NOTIFY ``runlater_notifications`` from the statement that wrote an event);
otherwise polls every ``poll_s``. Runs on every node: events are locked ``SKIP LOCKED`` and
expanded in one transaction with their notifications (``domain/notifications.py`` decides
channels, overrides, maintenance windows and the throttle), so an event becomes its
notifications exactly once, on whichever node takes it. E-mails go to the mail outbox in that
same transaction (the Mailer sends them, with its retries). Chat and webhook notifications are
an outbox of their own here: leased while sent, fenced when finished, retried after
``RETRY_DELAYS_S``, failed after ``MAX_ATTEMPTS``. A node killed between an event and its send
loses nothing: the event, or the notification, is still pending in the database.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import trio

from runlater import __version__
from runlater.actors.loop import run_periodic
from runlater.actors.messages import Wake
from runlater.clock import Clock
from runlater.delivery.client import Attempt, Sender
from runlater.delivery.signing import signature_headers
from runlater.domain.notifications import OrgContext, hour_of, plan_events, summary_mails
from runlater.store.notifications import NotificationResult
from runlater.store.ports import NotifierStore
from runlater.store.records import Row

log = logging.getLogger("runlater.actors.notifier")

EVENT_BATCH = 100
MAX_ATTEMPTS = 5
RETRY_DELAYS_S = (10.0, 60.0, 300.0, 900.0)
TIMEOUT_MS = 10_000
LEASE_MARGIN_S = 10.0


@dataclass(frozen=True, slots=True)
class NotifierResult:
    expanded: int  # events turned into notifications
    claimed: int  # notifications taken to send
    sent: int


def notification_request(row: Row, now_s: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a chat or webhook notification; a webhook's are signed like
    deliveries (``webhook-id`` is the notification's id, the same on every retry)."""
    body = json.dumps(row["payload"], separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Runlater/{__version__}",
        "X-Runlater-Event": row["event"],
    }
    if row["channel_type"] == "webhook":
        headers.update(signature_headers(row["signing_secrets"], str(row["id"]), now_s, body))
    return body, headers


def retry_delay_s(attempts_before: int) -> float:
    return RETRY_DELAYS_S[min(attempts_before, len(RETRY_DELAYS_S) - 1)]


class Notifier:
    def __init__(
        self,
        store: NotifierStore,
        sender: Sender,
        clock: Clock,
        *,
        base_url: str,
        mail_domain: str,
        poll_s: float = 1.0,
        concurrency: int = 10,
        mailbox: trio.MemoryReceiveChannel[Wake] | None = None,
    ) -> None:
        self.store = store
        self.sender = sender
        self.clock = clock
        self.base_url = base_url
        self.mail_domain = mail_domain
        self.poll_s = poll_s
        self.concurrency = concurrency
        self.mailbox = mailbox

    def _plan(self, now: datetime) -> Any:
        def plan(events: list[Row], contexts: dict[UUID, Row]) -> list[Any]:
            orgs = {
                org_id: OrgContext(
                    name=row["name"],
                    channels=[_channel(c) for c in row["channels"]],
                    owners=list(row["owners"]),
                    windows=[_window(w) for w in row["windows"]],
                    failure_mails_this_hour=row["failure_mails"],
                    summary_planned=row["summary_planned"],
                )
                for org_id, row in contexts.items()
            }
            return plan_events(events, orgs, now, self.base_url)

        return plan

    async def run_once(self) -> NotifierResult:
        now = self.clock.now()
        expanded = await self.store.expand_notification_events(
            EVENT_BATCH, now, hour_of(now), self._plan(now), self.mail_domain
        )
        rows = await self.store.claim_notifications(
            self.concurrency, TIMEOUT_MS / 1000 + LEASE_MARGIN_S, now
        )
        results: list[NotificationResult] = []
        sent = 0

        async def one(row: Row) -> None:
            nonlocal sent
            if row["summary_of"] is not None:
                sent += await self._summary(row)
                return
            result = await self._send(row)
            results.append(result)
            if not result.ok:
                log.info(
                    "actor=notifier notification failed id=%s type=%s error=%s",
                    row["id"],
                    row["channel_type"],
                    result.error,
                )

        async with trio.open_nursery() as nursery:
            for row in rows:
                nursery.start_soon(one, row)
        await self.store.finish_notifications(results, MAX_ATTEMPTS, self.clock.now())
        sent += sum(r.ok for r in results)
        return NotifierResult(expanded, len(rows), sent)

    async def _send(self, row: Row) -> NotificationResult:
        attempt = Attempt()
        body, attempt.request_headers = notification_request(row, int(time.time()))
        await self.sender.send(attempt, "POST", row["target"], body, TIMEOUT_MS)
        ok = attempt.status == "responded" and 200 <= (attempt.status_code or 0) < 300
        error = None if ok else (attempt.error or f"HTTP {attempt.status_code}")
        return NotificationResult(
            row["id"],
            row["lease_token"],
            ok,
            attempt.status_code,
            error,
            retry_delay_s(row["attempts"]),
        )

    async def _summary(self, row: Row) -> int:
        def compose(addresses: list[str], throttled: list[Row]) -> list[Any]:
            return summary_mails(
                addresses, throttled, row["organization_name"], row["summary_of"], self.base_url
            )

        done = await self.store.finish_summary(row, compose, self.clock.now(), self.mail_domain)
        return int(done)

    async def _pass(self) -> float:
        result = await self.run_once()
        if result.claimed == self.concurrency or result.expanded == EVENT_BATCH:
            return 0.0
        due_in = await self.store.next_notification_due_in(self.clock.now())
        return self.poll_s if due_in is None else min(self.poll_s, max(0.05, due_in))

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run_periodic("notifier", self._pass, mailbox=self.mailbox)


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _channel(raw: dict[str, Any]) -> Row:
    """A channel row read as JSON (ids as UUIDs)."""
    return {**raw, "id": UUID(raw["id"])}


def _window(raw: dict[str, Any]) -> Row:
    """A maintenance window read as JSON (ids as UUIDs, times as datetimes)."""
    return {
        **raw,
        "resource_id": UUID(raw["resource_id"]) if raw.get("resource_id") else None,
        "starts_at": _timestamp(raw.get("starts_at")),
        "ends_at": _timestamp(raw.get("ends_at")),
    }
