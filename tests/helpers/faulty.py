"""FaultyStore: the real store, with a chosen method failing or hanging on chosen calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from runlater.store.ports import NodeStore

Fault = BaseException | Callable[[int], BaseException] | None


class FaultyStore:
    """Proxy to a store (the real one, or another wrapper of it). ``fail(method, on_calls,
    exc)`` makes those calls raise ``exc`` (or hang when ``exc`` is None) instead of reaching
    the database. ``exc`` may also be a function of the call number that returns the exception
    to raise."""

    def __init__(self, store: NodeStore) -> None:
        self._store = store
        self._faults: dict[str, tuple[Callable[[int], bool], Fault]] = {}
        self.calls: dict[str, int] = {}

    def fail(self, method: str, when: Callable[[int], bool], exc: Fault) -> None:
        self._faults[method] = (when, exc)

    def heal(self, method: str | None = None) -> None:
        if method is None:
            self._faults.clear()
        else:
            self._faults.pop(method, None)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            n = self.calls[name] = self.calls.get(name, 0) + 1
            fault = self._faults.get(name)
            if fault is not None and fault[0](n):
                exc = fault[1](n) if callable(fault[1]) else fault[1]
                if exc is None:
                    await trio.sleep_forever()
                raise exc
            return await target(*args, **kwargs)

        return call
