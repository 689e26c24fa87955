"""``Idempotency-Key``: a repeat replays the first response without acting again."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import trio

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import make_org
from tests.helpers.keys import key_in_progress

TASK = {"url": "http://127.0.0.1:9999/x", "delay": "1h"}


def _client(store: Store) -> Any:
    return create_app(store, Settings(allow_private_targets=True), SystemClock()).test_client()


def _headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


async def _count_tasks(store: Store, org_id: UUID) -> int:
    return await store._run(
        lambda c: c.fetchval("select count(*) from tasks where organization_id = $1", org_id)
    )


async def _post(client: Any, key: str, idem: str | None, payload: Any = TASK) -> tuple[int, bytes]:
    response = await client.post("/api/v1/tasks", headers=_headers(key, idem), json=payload)
    return response.status_code, await response.get_data()


async def test_concurrent_duplicates_create_one_task(store: Store) -> None:
    org_id, key = await make_org(store)
    client = _client(store)
    results: list[tuple[int, bytes]] = []
    limiter = trio.CapacityLimiter(20)

    async def one() -> None:
        async with limiter:
            results.append(await _post(client, key, "same-key"))

    async with trio.open_nursery() as nursery:
        for _ in range(200):
            nursery.start_soon(one)

    assert len(results) == 200
    assert await _count_tasks(store, org_id) == 1
    accepted = {body for status, body in results if status == 202}
    assert len(accepted) == 1  # the first response and every replay: the same body
    assert {status for status, _ in results} <= {202, 409}
    for status, body in results:
        if status == 409:
            assert json.loads(body)["error"]["code"] == "idempotency_conflict"
    # Once done, every repeat is a replay of that one response.
    assert await _post(client, key, "same-key") == (202, accepted.pop())
    assert await _count_tasks(store, org_id) == 1


async def test_sequential_repeat_replays_status_body_and_content_type(store: Store) -> None:
    org_id, key = await make_org(store)
    client = _client(store)
    first = await client.post("/api/v1/tasks", headers=_headers(key, "k1"), json=TASK)
    assert first.status_code == 202
    again = await client.post("/api/v1/tasks", headers=_headers(key, "k1"), json=TASK)
    assert again.status_code == 202
    assert await again.get_data() == await first.get_data()
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert await _count_tasks(store, org_id) == 1


async def test_same_key_with_another_body_is_a_mismatch(store: Store) -> None:
    org_id, key = await make_org(store)
    client = _client(store)
    assert (await _post(client, key, "k2"))[0] == 202
    status, body = await _post(client, key, "k2", {**TASK, "delay": "2h"})
    assert status == 422
    assert json.loads(body)["error"]["code"] == "idempotency_mismatch"
    assert await _count_tasks(store, org_id) == 1


async def test_the_query_string_is_part_of_the_request(store: Store) -> None:
    """A dry run and the real sync under one key are different requests, not a replay."""
    org_id, key = await make_org(store)
    client = _client(store)
    document = {
        "tasks": [{"name": "nightly", "url": "http://127.0.0.1:9999/x", "cron": "0 3 * * *"}]
    }
    dry = await client.put("/api/v1/sync?dry_run=true", headers=_headers(key, "s1"), json=document)
    assert dry.status_code == 200
    assert (await dry.get_json())["data"]["tasks"]["created"] == ["nightly"]
    real = await client.put("/api/v1/sync", headers=_headers(key, "s1"), json=document)
    assert real.status_code == 422
    assert (await real.get_json())["error"]["code"] == "idempotency_mismatch"
    assert await _count_tasks(store, org_id) == 0


async def test_keys_are_per_organization(store: Store) -> None:
    org_a, key_a = await make_org(store, "Acme")
    org_b, key_b = await make_org(store, "Globex")
    client = _client(store)
    status_a, body_a = await _post(client, key_a, "shared")
    status_b, body_b = await _post(client, key_b, "shared")
    assert status_a == status_b == 202
    assert body_a != body_b
    assert await _count_tasks(store, org_a) == 1
    assert await _count_tasks(store, org_b) == 1


async def test_a_key_older_than_24_hours_acts_again(store: Store) -> None:
    org_id, key = await make_org(store)
    client = _client(store)
    status, first = await _post(client, key, "old")
    assert status == 202
    await store._run(
        lambda c: c.execute(
            "update idempotency_keys set created_at = now() - interval '25 hours'"
            " where organization_id = $1",
            org_id,
        )
    )
    status, second = await _post(client, key, "old")
    assert status == 202 and second != first
    assert await _count_tasks(store, org_id) == 2
    # The replaced record is fresh again: the next repeat replays the second response.
    assert await _post(client, key, "old") == (202, second)
    assert await _count_tasks(store, org_id) == 2


async def test_a_failed_request_is_replayed(store: Store) -> None:
    org_id, key = await make_org(store)
    client = _client(store)
    bad = {"url": "http://127.0.0.1:9999/x", "delay": "1h", "timeout_ms": "nope"}
    status, body = await _post(client, key, "bad", bad)
    assert status == 422
    assert json.loads(body)["error"]["code"] == "validation_error"
    assert await _post(client, key, "bad", bad) == (422, body)
    assert await _count_tasks(store, org_id) == 0


async def test_without_the_header_every_request_acts(store: Store) -> None:
    org_id, key = await make_org(store)
    client = _client(store)
    first = await _post(client, key, None)
    second = await _post(client, key, None)
    assert first[0] == second[0] == 202 and first[1] != second[1]
    assert await _count_tasks(store, org_id) == 2
    assert await store._run(lambda c: c.fetchval("select count(*) from idempotency_keys")) == 0


async def test_key_length_is_checked(store: Store) -> None:
    org_id, key = await make_org(store)
    client = _client(store)
    for bad in ("", "x" * 256):
        status, body = await _post(client, key, bad)
        assert status == 400, bad
        assert json.loads(body)["error"]["code"] == "bad_request"
    assert (await _post(client, key, "x" * 255))[0] == 202
    assert await _count_tasks(store, org_id) == 1


async def test_an_in_progress_key_is_a_conflict_until_its_request_ends(store: Store) -> None:
    """While another request's transaction holds the key: 409. Once it ends (here: rolled
    back, as a failed request's is), the key is free at once — nothing is left "in progress"."""
    org_id, key = await make_org(store)
    client = _client(store)
    body = json.dumps(TASK).encode()
    async with key_in_progress(store, org_id, "held", "POST", "/api/v1/tasks", body):
        status, answer = await _post(client, key, "held")
        assert status == 409
        assert json.loads(answer)["error"]["code"] == "idempotency_conflict"
    assert (await _post(client, key, "held"))[0] == 202
    assert await _count_tasks(store, org_id) == 1


async def test_purge_deletes_only_records_older_than_24_hours(store: Store) -> None:
    _, key = await make_org(store)
    client = _client(store)
    assert (await _post(client, key, "old"))[0] == 202
    assert (await _post(client, key, "new"))[0] == 202
    await store._run(
        lambda c: c.execute(
            "update idempotency_keys set created_at = now() - interval '25 hours' where key = 'old'"
        )
    )
    assert await store.purge_idempotency_keys() == 1
    keys = await store._run(lambda c: c.fetch("select key from idempotency_keys"))
    assert [r["key"] for r in keys] == ["new"]
