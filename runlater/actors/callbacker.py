"""Callbacker: POSTs the signed completion payload of every attempt to the task's callback_url,
and the failure payload of an execution that landed in the dead-letter queue to the task's
failure_callback_url (once; ``X-Runlater-Event: execution.failed``).

Mailbox: ``Wake`` (NOTIFY ``runlater_callbacks`` from the statement that recorded an attempt);
otherwise polls. Emits: nothing. Runs on every node with its own small concurrency, so slow or
failing callback targets never hold delivery workers. Callbacks are an outbox in Postgres
(written with the attempt itself), leased while sent and fenced when finished: a crash loses
none; an interrupted send is retried. Retry budget: 3 attempts, after 10 s and 60 s.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import trio

from runlater import __version__
from runlater.actors.loop import run_periodic
from runlater.actors.messages import Wake
from runlater.delivery.client import Attempt, Sender
from runlater.delivery.signing import signature_headers
from runlater.store.ports import CallbackStore
from runlater.store.records import CallbackResult

log = logging.getLogger("runlater.actors.callbacker")

MAX_ATTEMPTS = 3
RETRY_DELAYS_S = (10.0, 60.0)
TIMEOUT_MS = 10_000
LEASE_MARGIN_S = 10.0


@dataclass(frozen=True, slots=True)
class CallbackerResult:
    sent: int
    delivered: int


def callback_request(row: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(row["payload"], separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Runlater/{__version__}",
        "X-Runlater-Event": row["payload"].get("event", "execution.completed"),
        "X-Runlater-Execution-Id": str(row["execution_id"]),
        **signature_headers(row["signing_secrets"], str(row["id"]), int(time.time()), body),
    }
    return body, headers


class Callbacker:
    def __init__(
        self,
        store: CallbackStore,
        sender: Sender,
        *,
        concurrency: int = 10,
        poll_s: float = 1.0,
        mailbox: trio.MemoryReceiveChannel[Wake] | None = None,
    ) -> None:
        self.store = store
        self.sender = sender
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.mailbox = mailbox

    async def _send_one(self, row: dict[str, Any]) -> CallbackResult:
        attempt = Attempt()
        body, attempt.request_headers = callback_request(row)
        await self.sender.send(attempt, "POST", row["url"], body, TIMEOUT_MS)
        ok = attempt.status == "responded" and 200 <= (attempt.status_code or 0) < 300
        error = None if ok else (attempt.error or f"HTTP {attempt.status_code}")
        delay = RETRY_DELAYS_S[min(row["attempts"], len(RETRY_DELAYS_S) - 1)]
        return CallbackResult(row["id"], row["lease_token"], ok, attempt.status_code, error, delay)

    async def run_once(self) -> CallbackerResult:
        rows = await self.store.claim_callbacks(
            self.concurrency, TIMEOUT_MS / 1000 + LEASE_MARGIN_S
        )
        results: list[CallbackResult] = []

        async def one(row: dict[str, Any]) -> None:
            results.append(await self._send_one(row))

        async with trio.open_nursery() as nursery:
            for row in rows:
                nursery.start_soon(one, row)
        await self.store.finish_callbacks(results, MAX_ATTEMPTS)
        for result in results:
            if not result.ok:
                log.info(
                    "actor=callbacker callback failed id=%s error=%s",
                    result.callback_id,
                    result.error,
                )
        return CallbackerResult(len(rows), sum(r.ok for r in results))

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run_periodic("callbacker", self._pass, mailbox=self.mailbox)

    async def _pass(self) -> float:
        """One pass; at once again after a full one, else until the next callback is due
        (at most ``poll_s``)."""
        result = await self.run_once()
        if result.sent == self.concurrency:
            return 0.0
        due_in = await self.store.next_callback_due_in()
        return self.poll_s if due_in is None else min(self.poll_s, max(0.05, due_in))
