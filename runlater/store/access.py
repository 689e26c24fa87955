"""Store methods on the API's hot path: key authentication. (Audit entries and Idempotency-Key
answers are written by the request's own transaction: ``transaction.py``.)"""

from __future__ import annotations

from runlater.store.base import StoreBase, fetchrow
from runlater.store.queries import Q
from runlater.store.records import ApiKeyOwner


class AccessStore(StoreBase):
    async def authenticate_api_key(self, key_id: str, secret_hash: str) -> ApiKeyOwner | None:
        """The owner of the key with public part ``key_id`` (None when unknown). When
        ``secret_hash`` matches and the key is not revoked, its ``last_used_at`` is set, at most
        once a minute (older marks only)."""
        found = await self._run(fetchrow, Q.authenticate_api_key, key_id, secret_hash)
        if found is None:
            return None
        return ApiKeyOwner(
            found["id"],
            found["organization_id"],
            found["key_hash"],
            found["revoked_at"] is not None,
            found["tier"],
        )
