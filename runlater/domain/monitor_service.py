"""Heartbeat monitors as every front door changes them (REST, sync, the dashboard), and pings.

Raises ``runlater.errors.InvalidInput`` (and passes the store's ``NotFound``); the web layer
turns those into HTTP answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from runlater.clock import Clock
from runlater.domain.monitors import (
    cron_schedule,
    draft_monitor,
    plan_monitor_edit,
    serialize_edit,
    upcoming_columns,
)
from runlater.domain.service import Accepted
from runlater.domain.urls import UrlPolicy
from runlater.errors import InvalidInput, invalid
from runlater.schemas.sync import INVALID, MonitorSyncItem, SyncDraft, under
from runlater.store.bulk import TaskSyncResult
from runlater.store.monitors import DecideMonitors, MonitorSyncPlan, NameTaken, Ping
from runlater.store.ports import MonitorResourceStore
from runlater.store.records import Row

PingAnswer = Literal["ok", "not_found", "disabled"]


# Columns an edit recomputes from the schedule or the state; alone they never make a declared
# monitor "updated".
DERIVED = frozenset(
    {"cron_upcoming", "cron_refresh_at", "next_expected_at", "down_at", "started_at", "started_rid"}
)


def decide_monitors(items: list[MonitorSyncItem], now: datetime) -> DecideMonitors:
    """The store's callback for ``PUT /sync``: from the locked monitors with the declared
    names, what to create, what to edit (as ``PATCH /monitors/{id}``), what is unchanged."""

    def plan_for(existing: list[Row]) -> MonitorSyncPlan:
        by_name = {row["name"]: row for row in existing}
        plan = MonitorSyncPlan()
        errors: dict[str, list[str]] = {}
        for item in items:
            current = by_name.get(item.name)
            try:
                if current is None:
                    plan.create.append((item.name, draft_monitor(item.data, now)))
                    continue
                columns = plan_monitor_edit(item.data, now)(current)
                if any(columns[c] != current[c] for c in columns if c not in DERIVED):
                    plan.update.append((item.name, current["id"], serialize_edit(columns)))
                else:
                    plan.unchanged.append(item.name)
            except InvalidInput as exc:
                errors.update(under(item.path, exc))
        if errors:
            raise invalid(errors, INVALID)
        return plan

    return plan_for


def _name_taken(name: str) -> InvalidInput:
    return invalid(
        {"name": [f"a monitor named {name!r} exists already; names are unique in an organization"]}
    )


@dataclass(frozen=True, slots=True)
class MonitorService:
    store: MonitorResourceStore
    urls: UrlPolicy
    clock: Clock

    async def create(self, org_id: UUID, payload: object) -> Accepted[Row]:
        row = draft_monitor(payload, self.clock.now())
        warnings = await self.urls.check(row)
        try:
            return Accepted(await self.store.insert_monitor(org_id, row), warnings)
        except NameTaken as exc:
            raise _name_taken(str(exc)) from None

    async def update(self, org_id: UUID, monitor_id: UUID, payload: object) -> Accepted[Row]:
        plan = plan_monitor_edit(payload, self.clock.now())
        warnings = await self.urls.check(payload if isinstance(payload, dict) else {})
        try:
            updated = await self.store.update_monitor(
                org_id, monitor_id, lambda current: serialize_edit(plan(current))
            )
        except NameTaken as exc:
            raise _name_taken(str(exc)) from None
        return Accepted(updated, warnings)

    async def delete(self, org_id: UUID, monitor_id: UUID) -> None:
        await self.store.delete_monitor(org_id, monitor_id)

    async def sync(
        self, org_id: UUID, draft: SyncDraft, *, dry_run: bool
    ) -> Accepted[TaskSyncResult] | None:
        """Make the organization's monitors match the declared ones, matched by name (None
        when the request leaves monitors out)."""
        if draft.monitors is None:
            return None
        warnings = await self.urls.check_fields(
            (f"{item.path}.", item.data) for item in draft.monitors
        )
        result = await self.store.sync_monitors(
            org_id,
            [item.name for item in draft.monitors],
            decide_monitors(draft.monitors, self.clock.now()),
            delete_removed=draft.delete_removed,
            dry_run=dry_run,
        )
        return Accepted(result, warnings)

    async def ping(self, ping: Ping) -> PingAnswer:
        """Record a ping (one statement). Only when a cron monitor's stored instants have all
        passed (its leader was away for long) is a second statement needed to set the next."""
        found = await self.store.ping_monitor(ping)
        if found is None:
            return "not_found"
        if not found["enabled"]:
            return "disabled"
        if found["expected_missing"]:
            await self._fix_expected(found, ping.at)
        return "ok"

    async def _fix_expected(self, found: Row, at: datetime) -> None:
        schedule = cron_schedule(found["cron_expression"], found["timezone"])
        columns = upcoming_columns(schedule, at)
        upcoming = [datetime.fromisoformat(t) for t in columns["cron_upcoming"]]
        await self.store.fix_monitor_expected(
            found["id"],
            at,
            upcoming,
            datetime.fromisoformat(columns["cron_refresh_at"]),
            schedule.next_after(at),
        )
