"""Exponential backoff with jitter for actors waiting out an unavailable database."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from runlater.errors import StoreUnavailable, TransientConflict

log = logging.getLogger("runlater.actors")


class Backoff:
    def __init__(
        self, initial_s: float = 0.2, max_s: float = 5.0, rng: random.Random | None = None
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay_s(self) -> float:
        self.failures += 1
        base = min(self.max_s, self.initial_s * 2 ** (self.failures - 1))
        return base * self._rng.uniform(0.5, 1.0)

    async def wait(self) -> None:
        await trio.sleep(self.next_delay_s())

    def reset(self) -> None:
        self.failures = 0


async def repeat_every(
    actor: str, interval_s: float, run_once: Callable[[], Awaitable[Any]]
) -> None:
    """Run ``run_once`` every ``interval_s`` forever; an unavailable database is waited out with
    backoff (logged), anything else propagates to the supervisor."""
    backoff = Backoff()
    while True:
        try:
            await run_once()
            backoff.reset()
            await trio.sleep(interval_s)
        except (StoreUnavailable, TransientConflict) as exc:
            log.warning("actor=%s database unavailable error=%s", actor, exc)
            await backoff.wait()
