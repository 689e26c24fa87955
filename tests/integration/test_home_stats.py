"""The home page's numbers come from the per-minute aggregate the database keeps as executions
finish (migration 012), not from scanning executions."""

from __future__ import annotations

import html
import json
from uuid import UUID

from runlater.actors.janitor import Janitor
from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.domain.stats import percentile_ms
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.dashboard import Visitor, sign_in
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org, once_task


async def finish(database_url: str, execution: UUID, status: str, duration_ms: int) -> None:
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "update executions set status = $2, started_at = now(), finished_at = now(),"
            " duration_ms = $3 where id = $1",
            execution,
            status,
            duration_ms,
        )


async def test_finished_executions_are_counted_per_minute_and_shown_at_home(
    store: Store, database_url: str
) -> None:
    org, _ = await make_org(store)
    other, _ = await make_org(store, "Globex")
    for status, duration in (("success", 8), ("success", 40), ("success", 90), ("failed", 700)):
        row = await store.insert_task(org, once_task("https://example.com/x"), 0)
        await finish(database_url, row["execution_id"], status, duration)
    theirs = await store.insert_task(other, once_task("https://example.com/y"), 0)
    await finish(database_url, theirs["execution_id"], "success", 5)
    [hour] = await store.execution_hours(org, 168)
    assert (hour["success"], hour["failed"], hour["timeout"], hour["other"]) == (3, 1, 0, 0)
    assert hour["durations"][:7] == [1, 0, 1, 1, 0, 0, 1]  # ≤10, ≤50, ≤100, ≤1000 ms
    assert percentile_ms(hour["durations"], 0.5) == 50
    assert percentile_ms(hour["durations"], 0.95) == 1000
    v = Visitor(create_app(store, Settings(), SystemClock()).test_client())
    await sign_in(store, v, "owner@acme.test")
    home = await v.get("/")
    assert home.status == 200
    last_day = home.text.split('aria-label="Last 24 hours"', 1)[1].split("</section>", 1)[0]
    assert "4 <span" in last_day and "75.0 %" in last_day
    assert "p50 ≤ 50 ms" in last_day and "p95 ≤ 1000 ms" in last_day
    raw = home.text.split('<script type="application/json" id="chart-data">', 1)[1]
    chart = json.loads(html.unescape(raw.split("</script>", 1)[0]))
    assert len(chart["t"]) == 168 and sum(chart["success"]) == 3 and sum(chart["failed"]) == 1


async def test_the_janitor_deletes_minutes_older_than_8_days(
    store: Store, database_url: str
) -> None:
    org, _ = await make_org(store)
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "insert into execution_minutes (organization_id, minute, success)"
            " values ($1, date_trunc('minute', now() - interval '9 days'), 1),"
            " ($1, date_trunc('minute', now() - interval '6 days'), 1)",
            org,
        )
    result = await Janitor(store, SystemClock(), interval_s=60).run_once()
    assert result.minutes_deleted == 1
    assert sum(h["success"] for h in await store.execution_hours(org, 168)) == 1
