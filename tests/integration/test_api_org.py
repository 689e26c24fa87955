"""``POST /api/v1/org/webhook-secret/rotate``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import make_org


async def test_rotate_returns_a_new_secret_and_keeps_the_old_one_for_24h(store: Store) -> None:
    org, key = await make_org(store)
    other_org, _ = await make_org(store, "Other")
    before = (await store.get_organization(org))["webhook_secret"]
    other_before = (await store.get_organization(other_org))["webhook_secret"]
    client = create_app(store, Settings(), SystemClock()).test_client()
    response = await client.post(
        "/api/v1/org/webhook-secret/rotate", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert data["webhook_secret"].startswith("whsec_") and data["webhook_secret"] != before
    expires = datetime.fromisoformat(data["previous_secret_expires_at"])
    assert 23.9 < (expires - datetime.now(UTC)).total_seconds() / 3600 <= 24
    row = await store.get_organization(org)
    assert (row["webhook_secret"], row["previous_webhook_secret"]) == (
        data["webhook_secret"],
        before,
    )
    assert (await store.get_organization(other_org))["webhook_secret"] == other_before
    unauthenticated = await client.post("/api/v1/org/webhook-secret/rotate")
    assert unauthenticated.status_code == 401


async def test_get_org_shows_the_plan_secret_and_this_months_usage(store: Store) -> None:
    """``GET /org``: the contract's fields, the plan's limits, and executions counted as they
    are created (one-time tasks and triggers alike) — per organization."""
    org, key = await make_org(store, "Freebie", tier="free")
    other_org, other_key = await make_org(store, "Other", tier="pro")
    client = create_app(store, Settings(allow_private_targets=True), SystemClock()).test_client()
    auth = {"Authorization": f"Bearer {key}"}

    response = await client.get("/api/v1/org", headers=auth)
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    row = await store.get_organization(org)
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert data == {
        "id": str(org),
        "name": "Freebie",
        "slug": "freebie",
        "tier": "free",
        "webhook_secret": row["webhook_secret"],
        "usage": {
            "executions_this_month": 0,
            "limit": 10_000,
            "hard_limit": True,
            "warning": False,
            "period_start": month_start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "resets_at": (month_start + timedelta(days=32))
            .replace(day=1)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        },
        "limits": {"min_cron_interval_minutes": 60, "retention_days": 7},
    }

    target = {"url": "http://127.0.0.1:8080/hook"}
    assert (await client.post("/api/v1/tasks", json=target, headers=auth)).status_code == 202
    created = await client.post("/api/v1/tasks", json={**target, "cron": "0 * * * *"}, headers=auth)
    assert created.status_code == 201
    task_id = (await created.get_json())["data"]["id"]
    triggered = await client.post(f"/api/v1/tasks/{task_id}/trigger", headers=auth)
    assert triggered.status_code == 202
    usage = (await (await client.get("/api/v1/org", headers=auth)).get_json())["data"]["usage"]
    assert usage["executions_this_month"] == 2

    other = await client.get("/api/v1/org", headers={"Authorization": f"Bearer {other_key}"})
    other_data = (await other.get_json())["data"]
    assert (other_data["id"], other_data["tier"]) == (str(other_org), "pro")
    assert other_data["usage"]["executions_this_month"] == 0
    assert (other_data["usage"]["limit"], other_data["usage"]["hard_limit"]) == (1_000_000, False)
    assert other_data["limits"] == {"min_cron_interval_minutes": 1, "retention_days": 30}
    assert (await client.get("/api/v1/org")).status_code == 401
