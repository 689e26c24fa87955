"""Store methods for batch creation and declarative sync."""

from __future__ import annotations

from runlater.store.base import StoreBase


class BulkStore(StoreBase):
    pass
