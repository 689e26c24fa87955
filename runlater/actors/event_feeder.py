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
from runlater.store.events import KIND_TYPES, parse_notice
from runlater.store.ports import EventReadStore

log = logging.getLogger("runlater.actors.event_feeder")

MAX_BATCH = 500  # notices read together
READ_CHUNK = 1000  # ids per query


class EventFeeder:
    def __init__(
        self, store: EventReadStore, hub: Hub, mailbox: trio.MemoryReceiveChannel[Notice]
    ) -> None:
        self.store = store
        self.hub = hub
        self.mailbox = mailbox

    async def handle(self, notices: list[Notice]) -> int:
        """Publish what a batch of notices stands for; the number of events published.

        The notices that queued meanwhile are read together: one query per kind of change, in
        the order of ``KIND_TYPES``, and none for a kind no subscriber on this node wants."""
        if any(n.payload is None for n in notices):
            if self.hub.active:
                log.warning(
                    "actor=event_feeder notices may be lost: %d subscribers read again",
                    self.hub.subscribers,
                )
            self.hub.overflow_all()
        if not self.hub.active:
            return 0
        wanted = self.hub.wanted_types()
        ids: dict[str, list[Any]] = {}
        for notice in notices:
            if notice.payload is None:
                continue
            parsed = parse_notice(notice.payload)
            if parsed is None:
                log.warning(
                    "actor=event_feeder unknown notification payload=%.200s", notice.payload
                )
                continue
            kind, kind_ids = parsed
            if KIND_TYPES[kind] in wanted:
                ids.setdefault(kind, []).extend(kind_ids)
        published = 0
        for kind in KIND_TYPES:
            for start in range(0, len(ids.get(kind, ())), READ_CHUNK):
                if KIND_TYPES[kind] not in self.hub.wanted_types():
                    break  # every taker overflowed meanwhile (a burst): no rows to read
                chunk = ids[kind][start : start + READ_CHUNK]
                try:
                    events = await self.store.read_events(kind, chunk)
                except (StoreUnavailable, TransientConflict) as exc:
                    log.warning("actor=event_feeder events not read error=%s", exc)
                    self.hub.overflow_all()
                    return published
                self.hub.publish(events)
                published += len(events)
        return published

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for notice in self.mailbox:
            batch = [notice]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self.mailbox.receive_nowait())
                except trio.WouldBlock:
                    break
            await self.handle(batch)
