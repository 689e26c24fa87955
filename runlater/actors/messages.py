"""Messages that cross actor boundaries. Commands are imperative, events past tense.

Wake-up hints (``Wake``) may be dropped or coalesced: they only save latency, every actor also
polls. Nothing that must not be lost travels through a channel — Postgres holds that.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import trio


@dataclass(frozen=True, slots=True)
class Wake:
    """Something changed (a NOTIFY arrived, a worker finished, a reconnect): look again."""

    reason: str = ""


def hint(channel: trio.MemorySendChannel[Wake], message: Wake) -> None:
    """Send a droppable hint: a full mailbox already has a wake-up pending, a closed one is gone."""
    with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        channel.send_nowait(message)
