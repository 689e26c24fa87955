"""HeapTrimmer: every ``interval_s``, give the C heap's free pages back to the OS.

Mailbox: none (ticks). Emits: nothing. Runs on every node; it touches no shared state, so a crash
or a restart loses nothing. Why a node needs it: :mod:`runlater.heap`.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from runlater.actors.loop import at_interval, run_periodic
from runlater.heap import can_trim, trim_heap

log = logging.getLogger("runlater.actors.heap_trimmer")


class HeapTrimmer:
    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s

    async def run_once(self) -> bool:
        return trim_heap()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if not can_trim():
            log.info("actor=heap_trimmer this C library has no malloc_trim; not trimming")
            await trio.sleep_forever()
        await run_periodic("heap_trimmer", at_interval(self.run_once, self.interval_s))
