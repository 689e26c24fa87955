"""``POST /api/v1/org/webhook-secret/rotate``."""

from __future__ import annotations

from datetime import UTC, datetime

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
