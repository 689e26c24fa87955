"""The event hub: live events of one node, fanned out to its subscribers (websocket clients).

Where events come from: the database sends ``NOTIFY runlater_events`` when a change commits
(migration 011), on whichever node made it; every node's Listener hears it, the EventFeeder
reads the rows and calls :meth:`Hub.publish`. So the engine never talks to the hub and never
waits for a client: the Recorder writes its batch, Postgres does the rest.

A subscriber has a bounded buffer. Publishing never waits: a subscriber whose buffer is full is
marked *overflowed* (its connection sends ``{"type": "overflow"}`` and closes with 1013; the
client reconnects and reads the state again). ``publish`` costs a dict lookup per event when
the organization has no subscriber on this node.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import trio

EVENT_TYPES = frozenset(
    {
        "execution.started",
        "execution.finished",
        "task.created",
        "task.updated",
        "task.deleted",
        "queue.changed",
        "monitor.changed",
        "uptime_check.changed",
        "endpoint.event_received",
    }
)
DEFAULT_BUFFER = 256
# Event ids, increasing and unique in the process (not only per hub): the web layer makes each
# event's frame once and keeps it by id.
_EVENT_IDS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Event:
    """One event of one organization: ``data`` is what the frame's ``data`` holds."""

    org_id: UUID
    type: str
    at: datetime
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """One subscriber: events of ``org_id`` (of ``types``, all when empty) arrive on
    ``events``; ``overflowed`` is set when it fell behind and lost one."""

    org_id: UUID
    types: frozenset[str]
    send: trio.MemorySendChannel[tuple[int, Event]]
    events: trio.MemoryReceiveChannel[tuple[int, Event]]
    overflowed: trio.Event = field(default_factory=trio.Event)

    def wants(self, event: Event) -> bool:
        return not self.types or event.type in self.types


class Hub:
    """Subscriptions of this node, by organization. Used from one trio thread."""

    def __init__(self) -> None:
        self._by_org: dict[UUID, set[Subscription]] = {}
        self.published = 0
        self.overflows = 0

    @property
    def subscribers(self) -> int:
        # Not __len__: an empty hub must not be falsy (``hub or Hub()`` would replace it).
        return sum(len(s) for s in self._by_org.values())

    def count(self, org_id: UUID) -> int:
        return len(self._by_org.get(org_id, ()))

    def subscribe(
        self, org_id: UUID, types: Iterable[str] = (), buffer: int = DEFAULT_BUFFER
    ) -> Subscription:
        send, receive = trio.open_memory_channel[tuple[int, Event]](buffer)
        sub = Subscription(org_id, frozenset(types), send, receive)
        self._by_org.setdefault(org_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_org.get(sub.org_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_org[sub.org_id]
        sub.send.close()

    def publish(self, events: Iterable[Event]) -> None:
        """Hand each event to its organization's subscribers, in order, never waiting. The
        event's id (increasing on this node) travels with it."""
        for event in events:
            subs = self._by_org.get(event.org_id)
            if not subs:
                continue
            event_id = next(_EVENT_IDS)
            self.published += 1
            for sub in list(subs):
                if not sub.wants(event) or sub.overflowed.is_set():
                    continue
                try:
                    sub.send.send_nowait((event_id, event))
                except trio.WouldBlock:
                    sub.overflowed.set()
                    self.overflows += 1

    def overflow_all(self) -> None:
        """Events were lost before reaching the hub (the feeder fell behind, or the Listener
        reconnected): every subscriber must read the state again."""
        for subs in self._by_org.values():
            for sub in subs:
                if not sub.overflowed.is_set():
                    sub.overflowed.set()
                    self.overflows += 1

    def wanted_types(self) -> frozenset[str]:
        """The event types some subscriber on this node still takes (all, when one takes all).
        An overflowed subscriber takes nothing more: its connection is closing."""
        wanted: set[str] = set()
        for subs in self._by_org.values():
            for sub in subs:
                if sub.overflowed.is_set():
                    continue
                if not sub.types:
                    return EVENT_TYPES
                wanted |= sub.types
        return frozenset(wanted)

    @property
    def active(self) -> bool:
        """Whether anyone on this node still takes events (else the feeder needs not read
        them)."""
        return any(not sub.overflowed.is_set() for subs in self._by_org.values() for sub in subs)
