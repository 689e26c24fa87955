"""The event hub and the notice mailbox: bounded, never waiting, loud about what they lose."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import trio

from runlater.actors.messages import Notice, NoticeBox
from runlater.events import EVENT_TYPES, Event, Hub

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def event(org: UUID, kind: str = "task.created", n: int = 0) -> Event:
    return Event(org, kind, NOW, {"n": n})


async def test_events_reach_only_their_organizations_subscribers_in_order_with_increasing_ids() -> (
    None
):
    hub = Hub()
    a, b = uuid4(), uuid4()
    sub_a = hub.subscribe(a)
    sub_b = hub.subscribe(b, types={"task.deleted"})
    hub.publish(
        [event(a, n=1), event(b, n=2), event(a, "task.deleted", n=3), event(b, "task.deleted", n=4)]
    )
    got_a = [sub_a.events.receive_nowait() for _ in range(2)]
    assert [e.data["n"] for _, e in got_a] == [1, 3]
    assert got_a[0][0] < got_a[1][0]
    [(_, only_b)] = [sub_b.events.receive_nowait()]
    assert only_b.data["n"] == 4  # the filter: task.created of b was not wanted
    assert hub.subscribers == 2


async def test_a_subscriber_that_falls_behind_is_marked_and_publishing_never_waits() -> None:
    hub = Hub()
    org = uuid4()
    slow = hub.subscribe(org, buffer=3)
    fast = hub.subscribe(org, buffer=100)
    hub.publish([event(org, n=i) for i in range(10)])  # synchronous: it cannot wait
    assert slow.overflowed.is_set() and not fast.overflowed.is_set()
    assert [fast.events.receive_nowait()[1].data["n"] for _ in range(10)] == list(range(10))
    assert hub.overflows == 1
    hub.unsubscribe(slow)
    hub.unsubscribe(fast)
    assert not hub.active  # nobody left: the feeder reads nothing


async def test_lost_notices_make_every_subscriber_start_afresh() -> None:
    hub = Hub()
    subs = [hub.subscribe(uuid4()) for _ in range(3)]
    hub.overflow_all()
    assert all(s.overflowed.is_set() for s in subs)


async def test_a_full_notice_box_says_so_with_the_next_notice_that_fits() -> None:
    send, receive = trio.open_memory_channel[Notice](2)
    box = NoticeBox(send)
    for i in range(4):
        box.put(Notice(str(i)))
    assert [receive.receive_nowait().payload for _ in range(2)] == ["0", "1"]
    box.put(Notice("4"))
    assert [receive.receive_nowait().payload for _ in range(2)] == [None, "4"]


async def test_an_overflowed_subscriber_takes_nothing_more() -> None:
    hub = Hub()
    everything = hub.subscribe(uuid4(), buffer=1)
    finished = hub.subscribe(uuid4(), types={"execution.finished"})
    assert hub.wanted_types() == EVENT_TYPES
    everything.overflowed.set()
    assert hub.wanted_types() == {"execution.finished"}  # only what is still taken is read
    finished.overflowed.set()
    assert hub.wanted_types() == frozenset()
    assert not hub.active
    assert hub.subscribers == 2  # still there until their connections close
