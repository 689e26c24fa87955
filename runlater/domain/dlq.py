"""The dead-letter queue as every front door uses it (``/api/v1/dlq``, the QStash-compatible
``/v2/dlq``, the dashboard's Failures page): list, get, retry and delete dead letters.

A dead letter is an execution that failed or timed out with no retry to follow; the database
writes one per such execution (migration 022), calls the task's ``failure_callback_url``
once, and removes it when its chain is retried. Raises the store's ``NotFound`` for a letter
not in the organization, ``LimitExceeded`` when a plan's hard monthly limit refuses a retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from runlater.errors import NotFound
from runlater.schemas.dlq import MAX_IDS, MAX_MATCHING, Selection
from runlater.store.dlq import BulkResult, DeadLetterFilter, DeadLetterPort
from runlater.store.records import Row


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """Rows newest first; ``next_cursor``: pass it as ``before`` for the next page (None when
    nothing follows)."""

    rows: list[Row]
    has_more: bool
    next_cursor: UUID | None


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What a bulk retry or delete did. ``rows``: per letter acted on (a retry's carry the new
    execution); ``not_found``: ids given that are not (or no longer) letters of the
    organization; ``has_more``: a filter matched more letters than one call takes."""

    rows: list[Row]
    not_found: list[UUID] = field(default_factory=list)
    has_more: bool = False


def _outcome(selection: Selection, result: BulkResult, key: str) -> BulkOutcome:
    done = {row[key] for row in result.rows}
    missing = [i for i in selection.ids or () if i not in done]
    return BulkOutcome(result.rows, missing, result.has_more)


@dataclass(frozen=True, slots=True)
class DeadLetterService:
    store: DeadLetterPort

    async def list(
        self,
        org_id: UUID,
        where: DeadLetterFilter,
        *,
        limit: int,
        offset: int = 0,
        before: UUID | None = None,
    ) -> DeadLetterPage:
        """Offset pagination (``offset``) or a cursor (``before``: the previous page's
        ``next_cursor``), or both."""
        rows = await self.store.list_dead_letters(
            org_id, where, before=before, limit=limit, offset=offset
        )
        total = rows[0]["total"] if rows else 0
        has_more = offset + len(rows) < total
        return DeadLetterPage(rows, has_more, rows[-1]["id"] if has_more else None)

    async def get(self, org_id: UUID, dead_letter_id: UUID) -> Row:
        return await self.store.get_dead_letter(org_id, dead_letter_id)

    async def delete(self, org_id: UUID, dead_letter_id: UUID) -> None:
        result = await self.store.delete_dead_letters(
            org_id, [dead_letter_id], DeadLetterFilter(), 1
        )
        if not result.rows:
            raise NotFound("dead letter not found")

    async def delete_many(self, org_id: UUID, selection: Selection) -> BulkOutcome:
        """By ids (all that exist) or every letter the filter matches (up to 1,000 a call)."""
        limit = MAX_IDS if selection.ids is not None else MAX_MATCHING
        result = await self.store.delete_dead_letters(org_id, selection.ids, selection.where, limit)
        return _outcome(selection, result, "id")

    async def retry(self, org_id: UUID, dead_letter_id: UUID) -> Row:
        """A new attempt of the letter's execution, now; the letter leaves the queue (it comes
        back, as a new letter, if that attempt fails for good too). The attempt continues the
        execution's retry chain (same webhook-id) — a chain at its 11th attempt starts a new
        one. Returns the new execution (``execution_id``, ``status``, ``attempt``,
        ``scheduled_for``, ``dead_letter_id``)."""
        result = await self.store.retry_dead_letters(
            org_id, [dead_letter_id], DeadLetterFilter(), 1
        )
        if not result.rows:
            raise NotFound("dead letter not found")
        return result.rows[0]

    async def retry_many(self, org_id: UUID, selection: Selection) -> BulkOutcome:
        """As :meth:`retry` for each letter, all in one transaction (a plan's limit refuses
        them all): by ids (all that exist) or every letter the filter matches (oldest first,
        up to 1,000 a call)."""
        limit = MAX_IDS if selection.ids is not None else MAX_MATCHING
        result = await self.store.retry_dead_letters(org_id, selection.ids, selection.where, limit)
        return _outcome(selection, result, "dead_letter_id")
