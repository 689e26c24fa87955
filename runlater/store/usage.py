"""Store methods for plan usage counters and limits."""

from __future__ import annotations

from runlater.store.base import StoreBase


class UsageStore(StoreBase):
    pass
