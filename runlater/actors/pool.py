"""PoolManager: keeps between ``min_workers`` and ``max_workers`` Workers busy with due work.

Mailbox: ``Wake`` hints — an execution was inserted (NOTIFY via the Listener), a worker
finished one, the Listener reconnected. Also polls every ``poll_interval_s`` and sleeps exactly
until the next pending execution is due. Claims only as many executions as it has free worker
slots (each claimed lease must not run out while the row waits), in one round trip, and hands
them to workers over an unbuffered channel; workers are spawned on demand and exit when idle.
Outcomes are written in batches by the Recorder (group commit: one round trip for many).
Runs on every node. On crash or shutdown it writes what it has recorded in memory and hands
unfinished leases straight back to ``pending``. What it cannot write then (the database is
away) stays in the node's ``PoolCarry``, which the factory gives to every instance: the next
instance writes it before it claims anything. A lease nobody hands back is rescued after it
expires — nothing is lost, and a delivery whose outcome was carried is not sent again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import trio

from runlater.actors.backoff import Backoff
from runlater.actors.loop import TRANSIENT, run_periodic
from runlater.actors.messages import Wake, hint
from runlater.actors.worker import Worker, WorkerResult
from runlater.config import Settings
from runlater.delivery.client import Deliverer
from runlater.errors import Conflict, StoreError, StoreUnavailable, TransientConflict
from runlater.store.ports import DeliveryStore
from runlater.store.records import ClaimedExecution, Outcome

log = logging.getLogger("runlater.actors.pool")

RECORD_BATCH = 500
SHUTDOWN_FLUSH_S = 5.0


@dataclass
class PoolCarry:
    """What one pool instance leaves to the next: outcomes delivered but not yet written, and
    leases (execution id -> lease token) not yet handed back. One per node, outliving crashes;
    everything in it is fenced by its lease token, so writing it late is safe."""

    outcomes: list[Outcome] = field(default_factory=list)
    leases: dict[UUID, UUID] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PoolResult:
    claimed: int
    free_slots: int
    due_in_s: float | None
    workers: int


class Recorder:
    """Writes outcomes in batches; retries while the database is unavailable."""

    def __init__(
        self,
        store: DeliveryStore,
        outcomes: trio.MemoryReceiveChannel[Outcome],
        unrecorded: dict[UUID, UUID],
    ) -> None:
        self.store = store
        self.outcomes = outcomes
        self.unrecorded = unrecorded
        self.in_hand: list[Outcome] = []  # taken from the channel, not yet written

    def _take_available(self, first: Outcome | None) -> list[Outcome]:
        batch = [first] if first is not None else []
        while len(batch) < RECORD_BATCH:
            try:
                batch.append(self.outcomes.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch

    async def write(self, batch: list[Outcome]) -> None:
        """Record ``batch`` (``in_hand`` holds what is taken and not yet written)."""
        self.in_hand = batch
        await self.store.complete(batch)
        self.in_hand = []
        self._recorded(batch)

    def _recorded(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self.unrecorded.pop(outcome.execution_id, None)

    async def run(self) -> None:
        async for first in self.outcomes:
            await self.record(self._take_available(first))

    def unwritten(self) -> list[Outcome]:
        """Everything taken and not written, and everything still queued (after a stop)."""
        left = list(self.in_hand)
        while more := self._take_available(None):
            left += more
        return left

    async def record(self, batch: list[Outcome]) -> None:
        """Write ``batch``, waiting out an unavailable database. A batch that meets a lock
        (another organization's row held by a transaction in flight, perhaps of a node that
        vanished) is written one organization at a time; those still locked are tried again
        after a backoff, together with whatever arrived meanwhile — one held row never stalls
        every organization's outcomes for longer than a lock timeout."""
        backoff = Backoff()
        while batch:
            try:
                await self.write(batch)
                return
            except StoreUnavailable as exc:
                log.warning("actor=pool recorder waiting for database error=%s", exc)
            except TransientConflict as exc:
                log.warning("actor=pool recorder batch met a lock error=%s", exc)
                batch = await self._write_by_organization(batch)
                if not batch:
                    return
            except StoreError as exc:
                log.error("actor=pool recorder batch refused, writing one by one error=%s", exc)
                await self._write_each(batch)
                return
            await backoff.wait()
            batch = batch + self._take_available(None)
            self.in_hand = batch

    async def _write_by_organization(self, batch: list[Outcome]) -> list[Outcome]:
        """Write each organization's outcomes on their own; returns those still locked."""
        groups: dict[UUID | None, list[Outcome]] = {}
        for outcome in batch:
            groups.setdefault(outcome.organization_id, []).append(outcome)
        left = list(batch)
        blocked: list[Outcome] = []
        for group in groups.values():
            try:
                await self.store.complete(group)
            except TransientConflict:
                blocked.extend(group)
                continue
            self._recorded(group)
            written = {o.execution_id for o in group}
            left = [o for o in left if o.execution_id not in written]
            self.in_hand = left
        return blocked

    async def _write_each(self, batch: list[Outcome]) -> None:
        """Isolate a poisonous outcome: the others are recorded; a refused one stays leased
        and is rescued after its lease expires."""
        self.in_hand = list(batch)
        for outcome in batch:
            try:
                await self.store.complete([outcome])
            except (StoreUnavailable, TransientConflict):
                raise
            except StoreError as exc:
                log.error(
                    "actor=pool recorder could not record execution=%s error=%s",
                    outcome.execution_id,
                    exc,
                )
                self.unrecorded.pop(outcome.execution_id, None)  # the rescuer takes it over
            else:
                self._recorded([outcome])
            self.in_hand = self.in_hand[1:]

    async def flush_remaining(self) -> None:
        """Write what a crash or shutdown interrupted: the batch in hand and the queue."""
        batch = self.unwritten()
        if batch:
            await self.write(batch)


class PoolManager:
    def __init__(
        self,
        store: DeliveryStore,
        deliverer: Deliverer,
        settings: Settings,
        *,
        node: str,
        mailbox: trio.MemoryReceiveChannel[Wake],
        wake: trio.MemorySendChannel[Wake],
        carry: PoolCarry | None = None,
    ) -> None:
        self.store = store
        self.carry = carry if carry is not None else PoolCarry()
        self.settings = settings
        self.node = node
        self.mailbox = mailbox
        self._wake = wake
        self.worker = Worker(store, deliverer, node=node, lease_margin_s=settings.lease_margin_s)
        self.workers = 0
        self._in_flight: dict[UUID, UUID] = {}  # claimed and not yet delivered
        self._unrecorded: dict[UUID, UUID] = {}  # claimed and outcome not yet written

    @property
    def claim_threshold(self) -> int:
        """While deliveries are in flight, claim only once this many slots are free."""
        return max(1, self.settings.max_workers // 4)

    @property
    def free_slots(self) -> int:
        return self.settings.max_workers - len(self._in_flight)

    async def run_once(self) -> WorkerResult:
        """Claim what fits into the free slots now, deliver it, record it (tests drive this)."""
        return await self.worker.run_once(limit=self.free_slots)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        work_send, work_recv = trio.open_memory_channel[ClaimedExecution](0)
        record_send, record_recv = trio.open_memory_channel[Outcome](self.settings.max_workers)
        recorder = Recorder(self.store, record_recv, self._unrecorded)
        crash: Exception | None = None
        claiming = trio.CancelScope()

        async def record() -> None:
            # A crashed recorder stops the claiming, not the deliveries in flight: their
            # outcomes wait in the channel (room for every claimed one) for the hand-back.
            nonlocal crash
            try:
                await recorder.run()
            except Exception as exc:
                crash = crash or exc
                claiming.cancel()

        try:
            await self._settle_carry(recorder)
            async with trio.open_nursery() as outer:
                outer.start_soon(record)
                async with trio.open_nursery() as workers:

                    def spawn() -> None:
                        self.workers += 1
                        workers.start_soon(self._worker_loop, work_recv, record_send)

                    for _ in range(self.settings.min_workers):
                        spawn()
                    task_status.started()
                    try:
                        with claiming:
                            await self._claim_loop(work_send, spawn)
                    except Exception as exc:
                        # Stop claiming, but let deliveries in flight finish and be recorded:
                        # cancelling them would send them again after the lease is handed back.
                        crash = exc
                    finally:
                        work_send.close()
                record_send.close()  # the recorder writes what is left, then ends
        finally:
            await self._hand_back(recorder)
        if crash is not None:
            raise crash

    async def _claim_loop(
        self, work_send: trio.MemorySendChannel[ClaimedExecution], spawn: Any
    ) -> None:
        async def one_pass() -> float:
            return self._wait_s(await self._tick(work_send, spawn))

        # Conflict: a claim refused by the one-running-per-queue index (a race the claim's
        # compare-and-set should prevent); the statement claimed nothing, so trying again is
        # safe and must not count as a crash of the pool.
        await run_periodic("pool", one_pass, mailbox=self.mailbox, transient=(*TRANSIENT, Conflict))

    async def _tick(
        self, work_send: trio.MemorySendChannel[ClaimedExecution], spawn: Any
    ) -> PoolResult:
        free = self.free_slots
        if free <= 0 or (self._in_flight and free < self.claim_threshold):
            # Busy: wait for a few more workers to finish and claim them a batch together,
            # instead of one database round trip per finished delivery.
            return PoolResult(0, 0, None, self.workers)
        batch, due_in = await self.store.claim(free, self.node, self.settings.lease_margin_s)
        for claimed in batch:
            self._in_flight[claimed.id] = claimed.lease_token
            self._unrecorded[claimed.id] = claimed.lease_token
        for claimed in batch:
            if self.workers < min(self.settings.max_workers, len(self._in_flight)):
                spawn()
            await work_send.send(claimed)
        return PoolResult(len(batch), free, due_in, self.workers)

    def _wait_s(self, result: PoolResult) -> float:
        poll = self.settings.poll_interval_s
        if result.free_slots and result.claimed == result.free_slots:
            return 0.0  # a full batch: there may be more
        if result.due_in_s is not None:
            # Due but not claimed (another node holds the rows right now): don't spin.
            floor = 0.05 if result.claimed == 0 else 0.0
            return max(floor, min(poll, result.due_in_s))
        return poll

    async def _worker_loop(
        self,
        work: trio.MemoryReceiveChannel[ClaimedExecution],
        record: trio.MemorySendChannel[Outcome],
    ) -> None:
        def done(claimed: ClaimedExecution) -> None:
            self._in_flight.pop(claimed.id, None)
            # Only the finish that makes a batch claimable needs to wake the claim loop.
            if not self._in_flight or self.free_slots == self.claim_threshold:
                hint(self._wake, Wake("worker finished"))

        try:
            await self.worker.run(
                work,
                record,
                idle_s=self.settings.worker_idle_s,
                may_exit=lambda: self.workers > self.settings.min_workers,
                on_done=done,
            )
        finally:
            self.workers -= 1

    async def _settle_carry(self, recorder: Recorder) -> None:
        """Before the first claim, finish what an earlier instance could not: record its
        outcomes and release its unfinished leases, waiting out an unavailable database. They
        are this instance's from here on (a crash meanwhile carries them over again)."""
        outcomes, self.carry.outcomes = self.carry.outcomes, []
        self._unrecorded.update(self.carry.leases)
        self.carry.leases = {}
        if not outcomes and not self._unrecorded:
            return
        log.info(
            "actor=pool settling what the last instance left outcomes=%d leases=%d",
            len(outcomes),
            len(self._unrecorded),
        )
        for outcome in outcomes:
            self._unrecorded[outcome.execution_id] = outcome.lease_token
        await recorder.record(outcomes)  # drops each recorded one from _unrecorded
        backoff = Backoff()
        while self._unrecorded:
            try:
                await self._release_unrecorded()
            except (StoreUnavailable, TransientConflict) as exc:
                log.warning("actor=pool waiting to release leases error=%s", exc)
                await backoff.wait()

    async def _release_unrecorded(self) -> None:
        """Hand the leases in ``_unrecorded`` back to ``pending`` (and wake the pools)."""
        released = await self.store.release_leases(list(self._unrecorded.items()))
        if released:
            await self.store.notify_executions()
            log.info("actor=pool released unfinished leases count=%d", released)
        self._unrecorded.clear()

    async def _hand_back(self, recorder: Recorder) -> None:
        """Write finished outcomes and release unfinished leases, briefly and shielded. What
        cannot be written now goes into the carry for the next instance; either way this
        instance forgets it, so a restart starts with every slot free."""
        with trio.move_on_after(SHUTDOWN_FLUSH_S) as scope:
            scope.shield = True
            try:
                await recorder.flush_remaining()
                await self._release_unrecorded()
            except StoreError as exc:
                log.warning("actor=pool could not hand back; carried over error=%s", exc)
        unwritten = recorder.unwritten()
        carried = {o.execution_id for o in unwritten}
        self.carry.outcomes.extend(unwritten)
        self.carry.leases.update(
            {eid: token for eid, token in self._unrecorded.items() if eid not in carried}
        )
        self._unrecorded.clear()
        self._in_flight.clear()
