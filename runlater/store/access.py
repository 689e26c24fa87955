"""Store methods on the API's hot path: key authentication, and audit entries and finished
idempotency keys written many at a time (one statement for the rows of concurrent calls)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from runlater.store.base import StoreBase, fetchrow, fetchval
from runlater.store.queries import Q
from runlater.store.records import ApiKeyOwner


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit-log row (``audit_log``), as the API records it."""

    organization_id: UUID
    actor_type: str
    actor_id: UUID | None
    action: str
    resource_id: str | None
    status_code: int
    ip: str | None


@dataclass(frozen=True, slots=True)
class FinishedKey:
    """The response an Idempotency-Key's first call gave, to be replayed (``idempotency_keys``)."""

    organization_id: UUID
    key: str
    status: int
    body: bytes
    headers: dict[str, str]


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

    async def record_audit_entries(self, entries: Sequence[AuditRecord]) -> None:
        """Insert ``entries`` in one statement (all or none)."""
        if not entries:
            return
        await self._run(
            fetchval,
            Q.insert_audit_entries,
            [e.organization_id for e in entries],
            [e.actor_type for e in entries],
            [e.actor_id for e in entries],
            [e.action for e in entries],
            [e.resource_id for e in entries],
            [e.status_code for e in entries],
            [e.ip for e in entries],
        )

    async def finish_idempotency_keys(self, finished: Sequence[FinishedKey]) -> None:
        """Store the responses of in-progress keys (``finish_idempotency_key`` for many)."""
        if not finished:
            return
        await self._run(
            fetchval,
            Q.finish_idempotency_keys,
            [f.organization_id for f in finished],
            [f.key for f in finished],
            [f.status for f in finished],
            [f.body for f in finished],
            [f.headers for f in finished],
        )
