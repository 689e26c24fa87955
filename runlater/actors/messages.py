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


@dataclass(frozen=True, slots=True)
class Notice:
    """A NOTIFY's payload for an actor that needs it (the event feeder). ``payload`` None:
    notifications may have been missed (the Listener connected again, or this mailbox was
    full), so whoever relies on them must start afresh."""

    payload: str | None


class NoticeBox:
    """A bounded mailbox of notices whose overflow is not silent: when a notice does not fit,
    the next one to fit is ``Notice(None)``."""

    def __init__(self, send: trio.MemorySendChannel[Notice]) -> None:
        self.send = send
        self.missed = False

    def put(self, notice: Notice) -> None:
        # A closed mailbox: its actor is gone, and the next instance starts afresh anyway.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            try:
                if self.missed:
                    self.send.send_nowait(Notice(None))
                    self.missed = False
                self.send.send_nowait(notice)
            except trio.WouldBlock:
                self.missed = True
