"""Group commit: calls that hand in an item at about the same time share one database write.

Each call waits in :meth:`GroupCommit.add` until the batch holding its item has been written
(and gets the write's exception, if any) — so a response never goes out before its write is
done, as when every call wrote on its own, only with one round trip per batch instead of per
call. There is no background flusher that could be lost with the process: the calls waiting
in ``add`` do the writing themselves, oldest batch first, one write at a time; while one
runs, the items of newer calls gather for the next. ``add`` is shielded from cancellation,
so an item in the queue always has a call that waits for (and if need be performs) its write.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")

MAX_BATCH = 500


class _Batch(Generic[T]):
    __slots__ = ("done", "error", "items")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.done = trio.Event()
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Writes items with ``write(batch)`` (an async function taking a list), in batches."""

    def __init__(
        self, write: Callable[[list[T]], Awaitable[None]], *, max_batch: int = MAX_BATCH
    ) -> None:
        self._write = write
        self.max_batch = max_batch
        self.flushes = 0  # batches written (tests and benchmarks read it)
        self._queue: deque[_Batch[T]] = deque()
        self._flushing = False
        self._flushed = trio.Event()  # set when a write ends, then replaced

    async def add(self, item: T) -> None:
        """Return once the batch holding ``item`` is written; raise what its write raised."""
        if not self._queue or len(self._queue[-1].items) >= self.max_batch:
            self._queue.append(_Batch())
        batch = self._queue[-1]
        batch.items.append(item)
        with trio.CancelScope(shield=True):
            while not batch.done.is_set():
                if self._flushing:
                    await self._flushed.wait()
                else:
                    await self._flush_oldest()
        if batch.error is not None:
            raise batch.error

    async def _flush_oldest(self) -> None:
        self._flushing = True
        batch = self._queue.popleft()
        try:
            await self._write(batch.items)
        except Exception as exc:
            batch.error = exc
        finally:
            self.flushes += 1
            batch.done.set()
            self._flushing = False
            self._flushed.set()
            self._flushed = trio.Event()
