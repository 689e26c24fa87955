"""Rescuer: executions whose lease expired go back to ``pending`` (or fail after 3 interruptions).

Mailbox: none (ticks every ``rescue_interval_s``). Emits: a NOTIFY on ``runlater_executions``
when it requeued something, so every node's PoolManager looks again. Runs on every node: its
writes are fenced (``FOR UPDATE SKIP LOCKED`` on rows whose lease already expired), so two
rescuers never touch the same row. A crash loses nothing: the next tick finds the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import trio

from runlater.actors.loop import at_interval, run_periodic
from runlater.store.ports import DeliveryStore

log = logging.getLogger("runlater.actors.rescuer")

BATCH = 1000


@dataclass(frozen=True, slots=True)
class RescuerResult:
    requeued: int
    failed: int  # failed after too many interruptions, or cancelled (task deleted)


class Rescuer:
    def __init__(self, store: DeliveryStore, *, interval_s: float) -> None:
        self.store = store
        self.interval_s = interval_s

    async def run_once(self) -> RescuerResult:
        requeued = failed = 0
        while True:
            result = await self.store.rescue_expired(BATCH)
            requeued += result.requeued
            failed += result.failed + result.cancelled
            if result.requeued + result.failed + result.cancelled < BATCH:
                break
        if requeued:
            await self.store.notify_executions()
        if requeued or failed:
            log.warning("actor=rescuer expired leases requeued=%d failed=%d", requeued, failed)
        return RescuerResult(requeued, failed)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run_periodic("rescuer", at_interval(self.run_once, self.interval_s))
