"""``/api/v1/api-keys``: list, create (secret shown once) and revoke, org-scoped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import trio

from runlater.clock import ManualClock, SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import make_org

KEY_FIELDS = {"id", "name", "key_id", "last_used_at", "revoked_at", "inserted_at"}


def _client(store: Store) -> Any:
    return create_app(store, Settings(), SystemClock()).test_client()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_create_returns_a_working_key_once_and_list_hides_secrets(store: Store) -> None:
    _, key = await make_org(store)
    client = _client(store)
    response = await client.post("/api/v1/api-keys", headers=_auth(key), json={"name": "ci"})
    assert response.status_code == 201
    created = (await response.get_json())["data"]
    assert set(created) == KEY_FIELDS | {"key"}
    assert created["name"] == "ci" and created["revoked_at"] is None
    assert created["key"].startswith(created["key_id"] + ".sk_live_")
    assert created["inserted_at"].endswith("Z")

    listed = await client.get("/api/v1/api-keys", headers=_auth(created["key"]))
    assert listed.status_code == 200
    body = await listed.get_json()
    assert set(body) == {"data", "has_more", "limit", "offset"}
    assert (body["has_more"], body["limit"], body["offset"]) == (False, 50, 0)
    assert body["data"][0]["id"] == created["id"]  # newest first
    assert len(body["data"]) == 2  # plus the bootstrap key
    for item in body["data"]:
        assert set(item) == KEY_FIELDS
    text = await listed.get_data(as_text=True)
    assert created["key"].split(".")[1] not in text and "key_hash" not in text


async def test_create_accepts_wrapped_and_empty_bodies_and_refuses_other_fields(
    store: Store,
) -> None:
    org, key = await make_org(store)
    client = _client(store)
    wrapped = await client.post(
        "/api/v1/api-keys", headers=_auth(key), json={"api_key": {"name": "deploy"}}
    )
    assert wrapped.status_code == 201
    assert (await wrapped.get_json())["data"]["name"] == "deploy"
    empty = await client.post("/api/v1/api-keys", headers=_auth(key))
    assert empty.status_code == 201
    assert (await empty.get_json())["data"]["name"] is None
    extra = await client.post(
        "/api/v1/api-keys", headers=_auth(key), json={"key_hash": "x", "nmae": "deploy"}
    )
    assert extra.status_code == 422
    details = (await extra.get_json())["error"]["details"]
    assert details["nmae"] == ["unknown field 'nmae'; did you mean 'name'?"]
    assert details["key_hash"] == ["unknown field 'key_hash'; known fields: name"]
    assert len(await store.list_api_keys(org, limit=10, offset=0)) == 3


async def test_name_validation(store: Store) -> None:
    _, key = await make_org(store)
    client = _client(store)
    for name in ("x" * 201, "", 42, "a\x00b"):
        response = await client.post("/api/v1/api-keys", headers=_auth(key), json={"name": name})
        assert response.status_code == 422, name
        error = (await response.get_json())["error"]
        assert error["code"] == "validation_error" and "name" in error["details"]
    ok = await client.post("/api/v1/api-keys", headers=_auth(key), json={"name": "x" * 200})
    assert ok.status_code == 201
    bad_json = await client.post(
        "/api/v1/api-keys",
        headers={**_auth(key), "Content-Type": "application/json"},
        data="not json",
    )
    assert bad_json.status_code == 400
    assert (await bad_json.get_json())["error"]["code"] == "invalid_json"


async def test_revoked_key_stops_working_at_once_here_and_within_1s_on_every_node(
    store: Store, database_url: str
) -> None:
    _, key = await make_org(store)
    client = _client(store)
    created = (
        await (
            await client.post("/api/v1/api-keys", headers=_auth(key), json={"name": "n"})
        ).get_json()
    )["data"]
    other_store = await Store.open(database_url, pool_size=2)
    try:
        # The other node caches key lookups for under 1 s of its clock (runlater/web/auth.py).
        other_clock = ManualClock(datetime.now(UTC))
        other_client = create_app(other_store, Settings(), other_clock).test_client()
        for c in (client, other_client):
            assert (
                await c.get("/api/v1/api-keys", headers=_auth(created["key"]))
            ).status_code == 200

        revoke = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=_auth(key))
        assert revoke.status_code == 204
        other_clock.advance(1.0)
        for c in (client, other_client):
            denied = await c.get("/api/v1/api-keys", headers=_auth(created["key"]))
            assert denied.status_code == 401
            assert (await denied.get_json())["error"]["code"] == "unauthorized"
        # the key that did the revoking still works; revoking again is idempotent
        again = await other_client.delete(f"/api/v1/api-keys/{created['id']}", headers=_auth(key))
        assert again.status_code == 204
        listed = (await (await client.get("/api/v1/api-keys", headers=_auth(key))).get_json())[
            "data"
        ]
        revoked = next(item for item in listed if item["id"] == created["id"])
        assert revoked["revoked_at"] is not None and revoked["revoked_at"].endswith("Z")
    finally:
        with trio.CancelScope(shield=True):
            await other_store.close()


async def test_a_key_may_revoke_itself(store: Store) -> None:
    _, key = await make_org(store)
    client = _client(store)
    items = (await (await client.get("/api/v1/api-keys", headers=_auth(key))).get_json())["data"]
    assert len(items) == 1
    own = await client.delete(f"/api/v1/api-keys/{items[0]['id']}", headers=_auth(key))
    assert own.status_code == 204
    assert (await client.get("/api/v1/api-keys", headers=_auth(key))).status_code == 401


async def test_other_orgs_keys_are_invisible_and_not_found(store: Store) -> None:
    _, key_a = await make_org(store, "Alpha")
    _, key_b = await make_org(store, "Beta")
    client = _client(store)
    created = (
        await (
            await client.post("/api/v1/api-keys", headers=_auth(key_a), json={"name": "a"})
        ).get_json()
    )["data"]
    a_ids = {
        item["id"]
        for item in (await (await client.get("/api/v1/api-keys", headers=_auth(key_a))).get_json())[
            "data"
        ]
    }
    b_list = (await (await client.get("/api/v1/api-keys", headers=_auth(key_b))).get_json())["data"]
    assert len(b_list) == 1 and not a_ids & {item["id"] for item in b_list}

    for raw in (created["id"], "not-a-uuid", "018f0000-0000-7000-8000-000000000000"):
        response = await client.delete(f"/api/v1/api-keys/{raw}", headers=_auth(key_b))
        assert response.status_code == 404, raw
        assert (await response.get_json())["error"]["code"] == "not_found"
    # org A's key still works after org B's attempts
    assert (await client.get("/api/v1/api-keys", headers=_auth(created["key"]))).status_code == 200


async def test_pagination(store: Store) -> None:
    _, key = await make_org(store)
    client = _client(store)
    for i in range(3):
        response = await client.post("/api/v1/api-keys", headers=_auth(key), json={"name": f"k{i}"})
        assert response.status_code == 201
    first = await (await client.get("/api/v1/api-keys?limit=2", headers=_auth(key))).get_json()
    assert [item["name"] for item in first["data"]] == ["k2", "k1"]
    assert (first["has_more"], first["limit"], first["offset"]) == (True, 2, 0)
    second = await (
        await client.get("/api/v1/api-keys?limit=2&offset=2", headers=_auth(key))
    ).get_json()
    assert [item["name"] for item in second["data"]] == ["k0", "bootstrap"]
    assert second["has_more"] is False
    for query in ("limit=0", "limit=101", "limit=x", "offset=-1"):
        response = await client.get(f"/api/v1/api-keys?{query}", headers=_auth(key))
        assert response.status_code == 422, query
        error = (await response.get_json())["error"]
        assert error["code"] == "validation_error"
        assert query.split("=")[0] in error["details"]


async def test_requires_authentication(store: Store) -> None:
    client = _client(store)
    assert (await client.get("/api/v1/api-keys")).status_code == 401
    assert (await client.post("/api/v1/api-keys", json={"name": "x"})).status_code == 401
