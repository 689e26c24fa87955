"""Tasks made by the front doors beyond /api/v1 (inbound endpoints, the QStash-compatible /v2):
a body given as raw bytes is sent byte-exact, 'qstash' tasks carry an ``Upstash-Signature``
JWT signed with the organization's current signing key, and ``failure_callback_url`` is a task
field like the others (checked by the URL policy)."""

from __future__ import annotations

import base64
import hashlib
from uuid import UUID

import jwt
import pytest

from runlater.actors.worker import Worker
from runlater.clock import SystemClock
from runlater.delivery.client import Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.domain.service import TaskService
from runlater.domain.urls import UrlPolicy
from runlater.errors import InvalidInput
from runlater.store.postgres import Store
from tests.helpers.api import TARGET, Api, assert_error, list_ids
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org
from tests.helpers.sink import serve_sink

# Every byte value, and a NUL inside otherwise valid UTF-8: neither is text.
BINARY = bytes(range(256)) * 3
NUL_TEXT = b'{"a": "\x00"}'


async def deliver(store: Store) -> None:
    async with TrioTransport(allow_private=True) as transport:
        await Worker(store, Deliverer(transport), node="t", lease_margin_s=5).run_once(20)


@pytest.fixture
def tasks(store: Store) -> TaskService:
    return TaskService(store, UrlPolicy(allow_private=True), SystemClock())


@pytest.fixture
async def org(store: Store) -> UUID:
    return (await make_org(store, "Doors"))[0]


@pytest.mark.parametrize("raw", [BINARY, NUL_TEXT], ids=["binary", "nul"])
async def test_a_body_that_is_not_text_is_sent_byte_exact(
    store: Store, tasks: TaskService, org: UUID, raw: bytes
) -> None:
    async with serve_sink() as sink:
        created = await tasks.create(
            org, {"url": sink.url + "/bin", "delay": 0}, origin="inbound", body_bytes=raw
        )
        await deliver(store)
    assert sink.requests[0].body == raw
    assert sink.requests[0].headers["content-type"] == "application/octet-stream"
    stored = await store.get_task(org, created.value["id"])
    assert (stored["body"], bytes(stored["body_bytes"]), stored["origin"]) == (
        None,
        raw,
        "inbound",
    )


async def test_text_bytes_are_kept_as_the_editable_text_body(
    store: Store, tasks: TaskService, org: UUID
) -> None:
    raw = "grüße, {}".encode()
    created = await tasks.create(
        org, {"url": "https://93.184.216.34/t", "delay": 60}, body_bytes=raw
    )
    stored = await store.get_task(org, created.value["id"])
    assert (stored["body"], stored["body_bytes"], stored["origin"]) == ("grüße, {}", None, "api")


async def test_a_qstash_task_carries_an_upstash_jwt_and_runlater_signatures(
    store: Store, tasks: TaskService, org: UUID, database_url: str
) -> None:
    body = b'{"hello": "qstash"}'
    async with serve_sink() as sink:
        await tasks.create(
            org, {"url": sink.url + "/q?x=1", "delay": 0}, origin="qstash", body_bytes=body
        )
        await deliver(store)
    async with raw_connection(database_url) as conn:
        keys = await sql(
            conn,
            "select qstash_current_signing_key as cur, qstash_next_signing_key as nxt "
            "from organizations where id = $1",
            org,
        )
    got = sink.requests[0]
    claims = jwt.decode(
        got.headers["upstash-signature"],
        keys[0]["cur"],
        algorithms=["HS256"],
        issuer="Upstash",
        options={"require": ["iss", "sub", "exp", "nbf", "iat", "jti"]},
    )
    assert claims["sub"] == sink.url + "/q?x=1"
    assert "aud" not in claims
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
    assert claims["body"] == digest
    assert claims["exp"] - claims["iat"] == 300
    assert keys[0]["cur"] != keys[0]["nxt"] and keys[0]["cur"].startswith("sig_")
    assert "x-runlater-signature" in got.headers and "webhook-signature" in got.headers
    assert got.body == body


async def test_a_plain_api_task_has_no_upstash_signature(
    store: Store, tasks: TaskService, org: UUID
) -> None:
    async with serve_sink() as sink:
        await tasks.create(org, {"url": sink.url + "/plain", "delay": 0, "body": "x"})
        await deliver(store)
    assert "upstash-signature" not in sink.requests[0].headers


async def test_failure_callback_url_is_stored_edited_and_checked_by_the_url_policy(
    store: Store, org: UUID
) -> None:
    strict = TaskService(store, UrlPolicy(allow_private=False), SystemClock())
    with pytest.raises(InvalidInput) as refused:
        await strict.create(
            org,
            {"url": "https://93.184.216.34/a", "failure_callback_url": "http://10.0.0.5/dead"},
        )
    assert "failure_callback_url" in (refused.value.details or {})
    created = await strict.create(
        org,
        {"url": "https://93.184.216.34/a", "failure_callback_url": "https://93.184.216.34/dead"},
    )
    task_id = created.value["id"]
    assert (await store.get_task(org, task_id))["failure_callback_url"] == (
        "https://93.184.216.34/dead"
    )
    await strict.update(org, task_id, {"failure_callback_url": None})
    assert (await store.get_task(org, task_id))["failure_callback_url"] is None


async def test_the_task_list_leaves_inbound_forwards_out_unless_asked(
    store: Store, tasks: TaskService, api: Api
) -> None:
    org = (await api.get("/org")).body["data"]["id"]
    made = {}
    for origin in ("api", "inbound", "qstash"):
        created = await tasks.create(
            UUID(org), {"url": TARGET, "delay": "1h", "name": f"from {origin}"}, origin=origin
        )
        made[origin] = str(created.value["id"])
    assert set(await list_ids(api)) == {made["api"], made["qstash"]}
    assert await list_ids(api, "?origin=inbound") == [made["inbound"]]
    assert await list_ids(api, "?origin=qstash") == [made["qstash"]]
    assert set(await list_ids(api, "?origin=all")) == set(made.values())
    shown = (await api.get(f"/tasks/{made['qstash']}")).body["data"]
    assert shown["origin"] == "qstash"
    assert_error(await api.get("/tasks?origin=stripe"), 422, "validation_error", {"origin"})
