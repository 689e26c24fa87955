"""Worker: delivers executions and turns each attempt into a recorded outcome.

Mailbox: none of its own. Under the PoolManager a worker receives ``ClaimedExecution`` items on
the pool's work channel and exits when it has been idle for ``idle_s`` (while the pool has more
than its minimum). Emits: an ``Outcome`` per execution to the pool's recorder, and a ``Wake`` to
the pool when it finishes one. Runs on every node. A crash loses only the attempt in hand: its
lease expires and the rescuer puts the execution back to ``pending`` (at-least-once).

``run_once()`` claims a batch itself, delivers it and records the outcomes directly: the
deterministic path tests drive.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import trio

from runlater import metrics
from runlater.delivery.client import Attempt, Deliverer
from runlater.delivery.retry import parse_retry_after, retry_delay_s
from runlater.store.ports import DeliveryStore
from runlater.store.records import ClaimedExecution, Outcome

log = logging.getLogger("runlater.delivery")


@dataclass(frozen=True, slots=True)
class WorkerResult:
    claimed: int
    succeeded: int
    failed: int
    recorded: int


def outcome_of(
    claimed: ClaimedExecution,
    attempt: Attempt,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> Outcome:
    retry_after = (attempt.response_headers or {}).get("retry-after")
    next_run_in_s = None
    if claimed.next_run_at is not None:
        next_run_in_s = (claimed.next_run_at - (now or datetime.now(UTC))).total_seconds()
    return Outcome(
        execution_id=claimed.id,
        lease_token=claimed.lease_token,
        organization_id=claimed.organization_id,
        status=attempt.status,
        status_code=attempt.status_code,
        duration_ms=attempt.duration_ms,
        response_body=attempt.response_body,
        error_message=attempt.error,
        request_headers=attempt.request_headers,
        response_headers=attempt.response_headers,
        request_method=claimed.method,
        request_url=claimed.url,
        request_body=claimed.body,
        retry_after_s=parse_retry_after(retry_after),
        retry_in_s=retry_delay_s(
            schedule_type=claimed.schedule_type,
            attempt=claimed.attempt,
            retry_attempts=claimed.retry_attempts,
            status=attempt.status,
            status_code=attempt.status_code,
            retry_after=retry_after,
            next_run_in_s=next_run_in_s,
            rng=rng,
        ),
    )


def log_delivery(claimed: ClaimedExecution, outcome: Outcome) -> None:
    """One line per finished delivery attempt; a failure at WARNING with its error and what
    happens next."""
    fields: dict[str, object] = {
        "task": str(claimed.task_id),
        "execution": str(claimed.id),
        "attempt": claimed.attempt,
        "outcome": outcome.status,
        "status_code": outcome.status_code,
        "ms": outcome.duration_ms,
    }
    if outcome.status == "success":
        log.info("delivery", extra={"fields": fields})
        return
    fields["error"] = outcome.error_message
    fields["retry_in_s"] = None if outcome.retry_in_s is None else round(outcome.retry_in_s, 1)
    log.warning("delivery", extra={"fields": fields})


class Worker:
    def __init__(
        self, store: DeliveryStore, deliverer: Deliverer, *, node: str, lease_margin_s: float
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.node = node
        self.lease_margin_s = lease_margin_s

    async def handle(self, claimed: ClaimedExecution) -> Outcome:
        late_s = (datetime.now(UTC) - claimed.scheduled_for).total_seconds()
        metrics.LATENESS_SECONDS.observe(max(0.0, late_s))
        outcome = outcome_of(claimed, await self.deliverer.deliver(claimed))
        metrics.EXECUTIONS.labels(outcome.status).inc()
        metrics.DELIVERY_SECONDS.observe(outcome.duration_ms / 1000)
        log_delivery(claimed, outcome)
        return outcome

    async def run(
        self,
        work: trio.MemoryReceiveChannel[ClaimedExecution],
        record: trio.MemorySendChannel[Outcome],
        *,
        idle_s: float,
        may_exit: Callable[[], bool],
        on_done: Callable[[ClaimedExecution], None],
    ) -> None:
        """Serve the pool until idle for ``idle_s`` while ``may_exit()`` is true, or closed."""
        while True:
            with trio.move_on_after(idle_s) as idle:
                try:
                    claimed = await work.receive()
                except trio.EndOfChannel:
                    return
            if idle.cancelled_caught:
                if may_exit():
                    return
                continue
            outcome = await self.handle(claimed)
            await record.send(outcome)
            on_done(claimed)

    async def run_once(self, limit: int = 1) -> WorkerResult:
        """Claim up to ``limit`` due executions, deliver them concurrently, record outcomes."""
        batch, _ = await self.store.claim(limit, self.node, self.lease_margin_s)
        outcomes: list[Outcome] = []

        async def one(claimed: ClaimedExecution) -> None:
            outcomes.append(await self.handle(claimed))

        async with trio.open_nursery() as nursery:
            for claimed in batch:
                nursery.start_soon(one, claimed)
        recorded, _ = await self.store.complete(outcomes)
        ok = sum(1 for o in outcomes if o.status == "success")
        return WorkerResult(len(batch), ok, len(outcomes) - ok, recorded)
