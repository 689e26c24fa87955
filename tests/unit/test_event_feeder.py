"""The event feeder reads a batch of notices together, kind by kind in causal order, and reads
nothing nobody on the node wants."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import trio

from runlater.actors.event_feeder import EventFeeder
from runlater.actors.messages import Notice
from runlater.events import Event, Hub
from runlater.store.events import KIND_TYPES

ORG = uuid4()


class RecordingStore:
    """Answers read_events with one event per id, and records each read."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, list[Any]]] = []

    async def read_events(self, kind: str, ids: list[Any]) -> list[Event]:
        self.reads.append((kind, list(ids)))
        now = datetime.now(UTC)
        return [Event(ORG, KIND_TYPES[kind], now, {"id": i}) for i in ids]


def notice(kind: str, *ids: str) -> Notice:
    return Notice(json.dumps({"k": kind, "ids": list(ids)}))


async def test_a_batch_is_read_once_per_kind_in_causal_order() -> None:
    store, hub = RecordingStore(), Hub()
    sub = hub.subscribe(ORG)
    _, inbox = trio.open_memory_channel[Notice](1)
    feeder = EventFeeder(store, hub, inbox)
    batch = [notice("xf", "a"), notice("xs", "b"), notice("tc", "t"), notice("xf", "b")]
    assert await feeder.handle(batch) == 4
    assert store.reads == [("tc", ["t"]), ("xs", ["b"]), ("xf", ["a", "b"])]
    got = [sub.events.receive_nowait()[1] for _ in range(4)]
    assert [(e.type, e.data["id"]) for e in got] == [
        ("task.created", "t"),
        ("execution.started", "b"),
        ("execution.finished", "a"),
        ("execution.finished", "b"),
    ]


async def test_kinds_nobody_wants_are_not_read_and_lost_notices_overflow_everyone() -> None:
    store, hub = RecordingStore(), Hub()
    sub = hub.subscribe(ORG, types={"execution.finished"})
    _, inbox = trio.open_memory_channel[Notice](1)
    feeder = EventFeeder(store, hub, inbox)
    await feeder.handle([notice("tc", "t"), notice("xs", "x"), notice("xf", "x")])
    assert store.reads == [("xf", ["x"])]
    assert not sub.overflowed.is_set()
    await feeder.handle([Notice(None)])
    assert sub.overflowed.is_set()
    hub.unsubscribe(sub)
    store.reads.clear()
    await feeder.handle([notice("xf", "y")])
    assert store.reads == []  # nobody listens on this node


async def test_a_burst_that_overflows_every_taker_is_not_read_further() -> None:
    """6,000 tasks created in one statement, 256-event buffers: once the first chunk has
    overflowed every subscriber, reading the other rows would feed no one."""
    store, hub = RecordingStore(), Hub()
    sub = hub.subscribe(ORG, buffer=10)
    _, inbox = trio.open_memory_channel[Notice](1)
    feeder = EventFeeder(store, hub, inbox)
    ids = [f"t{i}" for i in range(2500)]
    await feeder.handle([notice("tc", *ids), notice("xf", "x")])
    assert store.reads == [("tc", ids[:1000])]  # one chunk of READ_CHUNK, then nothing
    assert sub.overflowed.is_set()
    assert not hub.active
