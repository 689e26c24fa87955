"""Exponential backoff with jitter for actors waiting out an unavailable database."""

from __future__ import annotations

import random

import trio


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
