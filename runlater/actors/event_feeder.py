"""EventFeeder: ``runlater_events`` notifications → rows read → events in this node's hub.

Mailbox: ``Notice`` (from the Listener). The database sends a notification when a change
commits (migration 011); this actor reads what it names (one query per notification, and
none while nobody on this node listens) and publishes the events. ``Notice(None)`` means
notifications may have been lost (the Listener reconnected, or this mailbox overflowed): every
subscriber is told to read the state again. A read that fails does the same. Runs on every
node; a crash costs subscribers an overflow, never the engine anything.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from runlater.actors.messages import Notice
from runlater.errors import StoreUnavailable, TransientConflict
from runlater.events import Hub
from runlater.store.events import parse_notice
from runlater.store.ports import EventReadStore

log = logging.getLogger("runlater.actors.event_feeder")


class EventFeeder:
    def __init__(
        self, store: EventReadStore, hub: Hub, mailbox: trio.MemoryReceiveChannel[Notice]
    ) -> None:
        self.store = store
        self.hub = hub
        self.mailbox = mailbox

    async def handle(self, notice: Notice) -> int:
        """Publish what one notice stands for; the number of events published."""
        if notice.payload is None:
            self.hub.overflow_all()
            return 0
        if not self.hub.active:
            return 0
        parsed = parse_notice(notice.payload)
        if parsed is None:
            log.warning("actor=event_feeder unknown notification payload=%.200s", notice.payload)
            return 0
        kind, ids = parsed
        try:
            events = await self.store.read_events(kind, ids)
        except (StoreUnavailable, TransientConflict) as exc:
            log.warning("actor=event_feeder events not read error=%s", exc)
            self.hub.overflow_all()
            return 0
        self.hub.publish(events)
        return len(events)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for notice in self.mailbox:
            await self.handle(notice)
