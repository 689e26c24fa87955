"""Store methods for named queues: pause state, counts."""

from __future__ import annotations

from runlater.store.base import StoreBase


class QueueStore(StoreBase):
    pass
