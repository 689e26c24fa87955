"""HTTP uptime checks as every front door changes them, and what a response means.

A check's first run is placed at its own phase within its interval (from its badge token),
so a thousand checks of one minute are spread over the minute instead of all firing at its
top; the phase is kept from one run to the next (``claim_due_uptime_checks``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from runlater.clock import Clock
from runlater.delivery.assertions import judge
from runlater.domain.monitors import new_badge_token
from runlater.domain.service import Accepted
from runlater.domain.urls import UrlPolicy
from runlater.errors import InvalidInput, invalid
from runlater.plans import PLANS
from runlater.schemas.uptime import parse_uptime_check
from runlater.store.monitors import NameTaken
from runlater.store.ports import UptimeResourceStore
from runlater.store.records import Row

DEFAULTS: Row = {
    "method": "GET",
    "timeout_ms": 10_000,
    "expected_status_codes": None,
    "keyword": None,
    "failure_threshold": 2,
    "enabled": True,
    "notify_on_failure": True,
    "notify_on_recovery": True,
    "on_failure_url": None,
    "on_recovery_url": None,
    "alert_after": 1,
}
_NOT_NULL = (
    "name",
    "url",
    "method",
    "interval_seconds",
    "timeout_ms",
    "failure_threshold",
    "enabled",
    "alert_after",
)
EDITABLE = (
    *DEFAULTS,
    "name",
    "url",
    "interval_seconds",
    "status",
    "next_check_at",
    "consecutive_failures",
)


def first_check_at(badge_token: str, interval_s: int, now: datetime) -> datetime:
    """Now (whole seconds) plus the check's own phase within its interval (0 .. interval - 1
    s): the check runs at the same second of each interval, different checks at different
    ones."""
    phase = int.from_bytes(hashlib.sha256(badge_token.encode()).digest()[:8], "big")
    return now.replace(microsecond=0) + timedelta(seconds=phase % interval_s)


def failure_of(
    status_code: int, body: str, expected: str | None, keyword: str | None
) -> str | None:
    """None when the answer means up, else why not."""
    why = judge(status_code, body, expected, None)
    if why is None and keyword and keyword not in body:
        why = f"keyword {keyword!r} not found in the response"
    return why


def _name_taken(name: str) -> InvalidInput:
    return invalid({"name": [f"an uptime check named {name!r} exists already; names are unique"]})


@dataclass(frozen=True, slots=True)
class UptimeService:
    store: UptimeResourceStore
    urls: UrlPolicy
    clock: Clock

    async def _min_interval(self, org_id: UUID) -> int:
        tier = (await self.store.get_organization_usage(org_id))["tier"]
        return PLANS[tier].min_uptime_interval_s

    async def _check_interval(self, org_id: UUID, interval_s: int) -> None:
        minimum = await self._min_interval(org_id)
        if interval_s < minimum:
            raise invalid({"interval_seconds": [f"must be at least {minimum} on this plan"]})

    async def create(self, org_id: UUID, payload: Any) -> Accepted[Row]:
        _, fields = parse_uptime_check(payload)
        missing = {
            k: ["is required"]
            for k in ("name", "url", "interval_seconds")
            if getattr(fields, k) is None
        }
        if missing:
            raise invalid(missing)
        if fields.status is not None:
            raise invalid({"status": ["a new check starts as new; pause it after creating it"]})
        assert fields.interval_seconds is not None
        # The URL first: its name lookup must not hold the request's database transaction.
        warnings = await self.urls.check({"url": fields.url})
        await self._check_interval(org_id, fields.interval_seconds)
        row: Row = {
            k: (v if (v := getattr(fields, k)) is not None else d) for k, d in DEFAULTS.items()
        }
        row.update(
            name=fields.name,
            url=fields.url,
            interval_seconds=fields.interval_seconds,
            status="new",
            badge_token=new_badge_token(),
        )
        row["next_check_at"] = first_check_at(
            row["badge_token"], fields.interval_seconds, self.clock.now()
        ).isoformat()
        warnings += await self.urls.check(row, ("on_failure_url", "on_recovery_url"))
        try:
            return Accepted(await self.store.insert_uptime_check(org_id, row), warnings)
        except NameTaken as exc:
            raise _name_taken(str(exc)) from None

    async def update(self, org_id: UUID, check_id: UUID, payload: Any) -> Accepted[Row]:
        given, fields = parse_uptime_check(payload)
        changes = {k: getattr(fields, k) for k in given}
        for key in _NOT_NULL:
            if key in changes and changes[key] is None:
                raise invalid({key: ["cannot be null"]})
        warnings = await self.urls.check(changes)  # before the database (see create)
        if fields.interval_seconds is not None:
            await self._check_interval(org_id, fields.interval_seconds)
        now = self.clock.now()
        plan = _plan_edit(changes, now)
        try:
            updated = await self.store.update_uptime_check(org_id, check_id, plan)
        except NameTaken as exc:
            raise _name_taken(str(exc)) from None
        return Accepted(updated, warnings)

    async def delete(self, org_id: UUID, check_id: UUID) -> None:
        await self.store.delete_uptime_check(org_id, check_id)


def _plan_edit(changes: Row, now: datetime) -> Callable[[Row], Row]:
    def plan(current: Row) -> Row:
        out = {**current, **changes}
        restart = changes.get("status") == "new" or (
            changes.get("enabled") is True and not current["enabled"]
        )
        if restart:
            out.update(status="new", consecutive_failures=0)
        if restart or "interval_seconds" in changes:
            out["next_check_at"] = first_check_at(
                current["badge_token"], out["interval_seconds"], now
            )
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in out.items()
            if k in EDITABLE
        }

    return plan
