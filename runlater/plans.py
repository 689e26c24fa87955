"""What each plan allows: the one place the numbers are written.

``Store.migrate()`` copies these into the ``plans`` table at every start, and the database
enforces them from there (triggers of migration 006): a cron task below the plan's minimum
interval is refused, a hard-stop plan refuses new work over its monthly executions, and the
Janitor deletes history older than the retention. Migration 006 seeds the same values, so a
database migrated without a node (the test template) enforces them too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    tier: str
    min_cron_interval_minutes: int
    monthly_executions: int
    # True: new work over ``monthly_executions`` is refused (422 limit_exceeded) and cron slots
    # are recorded as cancelled. False: over the limit is only reported (GET /org usage.warning).
    hard_stop: bool
    retention_days: int
    # Members of an organization, pending invitations included (None: no limit).
    max_members: int | None
    # The shortest interval of an HTTP uptime check (checked by the uptime check service).
    min_uptime_interval_s: int = 300


FREE = Plan(
    "free",
    min_cron_interval_minutes=60,
    monthly_executions=10_000,
    hard_stop=True,
    retention_days=7,
    max_members=2,
)
PRO = Plan(
    "pro",
    min_cron_interval_minutes=1,
    monthly_executions=1_000_000,
    hard_stop=False,
    retention_days=30,
    max_members=None,
    min_uptime_interval_s=30,
)
PLANS: dict[str, Plan] = {plan.tier: plan for plan in (FREE, PRO)}
