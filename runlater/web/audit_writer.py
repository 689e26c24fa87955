"""Audit entries written by group commit: API calls that finish together share one INSERT.

Each call's entry is committed (or its failure logged) before its response goes out
(``runlater/web/group_commit.py``). A batch that the database refuses for another reason
than unavailability is retried one entry at a time, so one bad entry cannot take others with
it; every entry that could not be written is logged with its organization, action and
resource.
"""

from __future__ import annotations

import logging
from typing import Any

from runlater.errors import StoreError, StoreUnavailable
from runlater.store.access import AuditRecord
from runlater.web.group_commit import MAX_BATCH, GroupCommit

log = logging.getLogger("runlater.web.audit")


class AuditWriter:
    """Writes audit entries through ``store.record_audit_entries`` in batches."""

    def __init__(self, store: Any, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self._group = GroupCommit(self._insert, max_batch=max_batch)

    @property
    def flushes(self) -> int:
        """INSERT statements issued so far (one per batch)."""
        return self._group.flushes

    async def write(self, entry: AuditRecord) -> None:
        """Return once ``entry`` is committed, or its failure has been logged."""
        await self._group.add(entry)

    async def _insert(self, entries: list[AuditRecord]) -> None:
        try:
            await self.store.record_audit_entries(entries)
            return
        except StoreUnavailable as exc:
            failed, error = entries, exc
        except StoreError as exc:
            failed, error = [], exc
            if len(entries) == 1:
                failed = entries
            else:
                for entry in entries:
                    try:
                        await self.store.record_audit_entries([entry])
                    except StoreError as one_error:
                        failed.append(entry)
                        error = one_error
        for entry in failed:
            log.error(
                "audit entry not written org=%s action=%s resource=%s status=%s error=%s",
                entry.organization_id,
                entry.action,
                entry.resource_id,
                entry.status_code,
                error,
            )
