"""Supervisor restart policy, driven with trio's autojump clock (no real I/O here)."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY

from runlater.errors import SupervisorGaveUp
from runlater.supervisor import ChildSpec, Restart, RestartPolicy, Supervisor


class Flaky:
    """Crashes ``crashes`` times (mid-loop, after start), then runs forever."""

    runs = 0

    def __init__(self, state: dict[str, int]) -> None:
        self.state = state

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        self.state["runs"] += 1
        await trio.sleep(1)
        if self.state["runs"] <= self.state["crashes"]:
            raise RuntimeError(f"boom {self.state['runs']}")
        await trio.sleep_forever()


@pytest.fixture
def autojump() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def test_crashing_child_is_restarted_and_logged(
    autojump: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A child raising mid-loop is rebuilt from its factory; the crash names the actor."""
    state = {"runs": 0, "crashes": 3}
    sup = Supervisor(
        [ChildSpec("flaky", lambda: Flaky(state))], RestartPolicy(5, 30), rng=random.Random(1)
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            await trio.sleep(60)
            nursery.cancel_scope.cancel()

    def restarts_counted() -> float:
        return REGISTRY.get_sample_value("runlater_actor_restarts_total", {"actor": "flaky"}) or 0

    counted = restarts_counted()
    with caplog.at_level(logging.ERROR, logger="runlater.supervisor"):
        trio.run(main, clock=autojump)
    assert state["runs"] == 4
    assert sup.restarts["flaky"] == 3
    assert restarts_counted() - counted == 3
    assert sum("actor=flaky" in r.getMessage() for r in caplog.records) == 3


def test_more_crashes_than_budget_gives_up(autojump: trio.testing.MockClock) -> None:
    """The sixth crash within 30 s raises SupervisorGaveUp (the node then exits non-zero)."""
    state = {"runs": 0, "crashes": 100}
    sup = Supervisor([ChildSpec("flaky", lambda: Flaky(state))], RestartPolicy(5, 30))
    with pytest.raises(BaseException) as info:
        trio.run(sup.run, clock=autojump)
    leaves = info.value.exceptions if isinstance(info.value, BaseExceptionGroup) else [info.value]
    assert any(isinstance(e, SupervisorGaveUp) for e in leaves)
    assert state["runs"] == 6


def test_crashes_spread_beyond_window_do_not_give_up(autojump: trio.testing.MockClock) -> None:
    """Crashes further apart than the window never exhaust the budget."""
    state = {"runs": 0, "crashes": 8}

    class Slow(Flaky):
        async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            self.state["runs"] += 1
            await trio.sleep(20)  # > window / max_restarts: never 6 within 30 s
            if self.state["runs"] <= self.state["crashes"]:
                raise RuntimeError("slow boom")
            await trio.sleep_forever()

    sup = Supervisor([ChildSpec("slow", lambda: Slow(state))], RestartPolicy(2, 30))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            await trio.sleep(400)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=autojump)
    assert state["runs"] == 9


def test_children_start_in_order_and_temporary_is_not_restarted(
    autojump: trio.testing.MockClock,
) -> None:
    order: list[str] = []

    class Recorder:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            order.append(self.name)
            task_status.started()
            if self.fail:
                raise RuntimeError("once")
            await trio.sleep_forever()

    sup = Supervisor(
        [
            ChildSpec("a", lambda: Recorder("a")),
            ChildSpec("b", lambda: Recorder("b", fail=True), Restart.TEMPORARY),
            ChildSpec("c", lambda: Recorder("c")),
        ]
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            await trio.sleep(10)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=autojump)
    assert order == ["a", "b", "c"]


def test_backoff_grows_and_is_jittered() -> None:
    policy = RestartPolicy(backoff_initial_s=0.1, backoff_max_s=5)
    rng = random.Random(7)
    delays = [policy.backoff_s(n, rng) for n in range(1, 10)]
    assert all(0.05 <= d <= 5 for d in delays)
    assert delays[0] <= 0.1 and delays[-1] >= 2.5
    assert len({round(d, 6) for d in delays}) == len(delays)
