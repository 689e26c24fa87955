"""The API-key cache of one node: lookups trusted for less than a second (see ``web.auth``)."""

from __future__ import annotations

from collections import OrderedDict

from runlater.store.records import ApiKeyOwner
from runlater.web.ratelimit import Seconds

KEY_CACHE_TTL_S = 1.0
KEY_CACHE_MAX = 10_000


class ApiKeyCache:
    """key id → (owner, when its lookup started), trusted for less than ``ttl_s``."""

    def __init__(self, now: Seconds, ttl_s: float = KEY_CACHE_TTL_S, size: int = KEY_CACHE_MAX):
        self.now = now
        self.ttl_s = ttl_s
        self.size = size
        self._entries: OrderedDict[str, tuple[ApiKeyOwner, float]] = OrderedDict()

    def get(self, key_id: str) -> ApiKeyOwner | None:
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        owner, started = entry
        # A clock that went backwards makes the entry untrustworthy too.
        if not 0.0 <= self.now() - started < self.ttl_s:
            del self._entries[key_id]
            return None
        return owner

    def put(self, key_id: str, owner: ApiKeyOwner, started: float) -> None:
        self._entries[key_id] = (owner, started)
        self._entries.move_to_end(key_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
