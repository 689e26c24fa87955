"""The delivery path against real Postgres and a real local HTTP sink: signatures (checked
with the standardwebhooks library and a plain HMAC), secret rotation, response assertions,
Retry-After, callbacks with their own retry budget, and per-host backoff."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import UUID

import httpx
import pytest
import trio
from standardwebhooks import Webhook

from runlater.actors.callbacker import MAX_ATTEMPTS, Callbacker
from runlater.actors.worker import Worker, WorkerResult
from runlater.apikeys import new_webhook_secret
from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.delivery.client import Deliverer, Sender
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import cron_task, make_org, once_task
from tests.helpers.sink import Received, serve_sink


async def deliver_due(store: Store, limit: int = 20) -> WorkerResult:
    """One worker pass the way a node sends: our transport, called directly, SSRF at connect."""
    async with TrioTransport(allow_private=True) as transport:
        deliverer = Deliverer(transport)
        return await Worker(store, deliverer, node="t", lease_margin_s=5).run_once(limit)


async def executions_of(store: Store, org: UUID, task_id: UUID) -> list[dict[str, Any]]:
    return await store.list_task_executions(org, task_id, status=None, limit=50, offset=0)


async def secret_of(store: Store, org: UUID) -> str:
    return (await store.get_organization(org))["webhook_secret"]


def verify_both_ways(received: Received, secret: str) -> None:
    Webhook(secret).verify(received.body, received.headers)  # raises when wrong
    ours = received.headers["x-runlater-signature"].split(" ")
    assert f"sha256={hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()}" in ours


# ------------------------------------------------------------------------------ signatures


async def test_delivery_is_signed_both_ways_with_runlater_headers(store: Store) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink:
        row = await store.insert_task(
            org,
            once_task(
                sink.url + "/hook",
                body='{"order": 42}',
                headers={"X-Custom": "yes", "webhook-id": "spoofed"},
            ),
            0,
        )
        await deliver_due(store)
    got = sink.requests[0]
    verify_both_ways(got, await secret_of(store, org))
    assert got.headers["webhook-id"] == str(row["execution_id"])  # not the task's own header
    assert got.headers["x-runlater-task-id"] == str(row["id"])
    assert got.headers["x-runlater-execution-id"] == str(row["execution_id"])
    assert got.headers["x-runlater-attempt"] == "1"
    assert got.headers["user-agent"].startswith("Runlater/")
    assert got.headers["x-custom"] == "yes"


async def test_retry_keeps_the_webhook_id_of_the_first_attempt(store: Store) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink:
        row = await store.insert_task(
            org, once_task(sink.url + "/status/500?retry_after=0", retry_attempts=1), 0
        )
        await deliver_due(store)
        await deliver_due(store)  # the retry is due at once (Retry-After: 0)
    assert [r.headers["x-runlater-attempt"] for r in sink.requests] == ["1", "2"]
    assert {r.headers["webhook-id"] for r in sink.requests} == {str(row["execution_id"])}
    for received in sink.requests:
        verify_both_ways(received, await secret_of(store, org))


async def test_rotation_signs_with_new_and_old_secret(store: Store) -> None:
    org, _ = await make_org(store)
    old = await secret_of(store, org)
    rotated = await store.rotate_webhook_secret(org, new_webhook_secret())
    new = rotated["webhook_secret"]
    async with serve_sink() as sink:
        await store.insert_task(org, once_task(sink.url + "/hook"), 0)
        await deliver_due(store)
    got = sink.requests[0]
    verify_both_ways(got, new)
    verify_both_ways(got, old)
    first = got.headers["x-runlater-signature"].split(" ")[0]
    assert first == "sha256=" + hmac.new(new.encode(), got.body, hashlib.sha256).hexdigest()


async def test_after_the_rotation_window_only_the_new_secret_signs(
    store: Store, database_url: str
) -> None:
    org, _ = await make_org(store)
    old = await secret_of(store, org)
    new = (await store.rotate_webhook_secret(org, new_webhook_secret()))["webhook_secret"]
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "update organizations set previous_webhook_secret_expires_at = "
            "now() - interval '1 s' where id = $1",
            org,
        )
    async with serve_sink() as sink:
        await store.insert_task(org, once_task(sink.url + "/hook"), 0)
        await deliver_due(store)
    got = sink.requests[0]
    verify_both_ways(got, new)
    assert len(got.headers["x-runlater-signature"].split(" ")) == 1
    with pytest.raises(Exception, match="signature"):
        Webhook(old).verify(got.body, got.headers)


# ---------------------------------------------------------------------- response assertions


@pytest.mark.parametrize(
    ("path", "codes", "pattern", "status", "error"),
    [
        ("/status/202", "200,201", None, "failed", "HTTP 202, expected 200,201"),
        ("/status/201", "200,201", None, "success", None),
        ("/status/404", "404", None, "success", None),
        ("/body/all-good", None, r"good$", "success", None),
        ("/body/degraded", None, r"^ok", "failed", "does not match expected_body_pattern"),
        ("/status/500", None, None, "failed", "HTTP 500"),
    ],
)
async def test_response_assertions(
    store: Store,
    path: str,
    codes: str | None,
    pattern: str | None,
    status: str,
    error: str | None,
) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink:
        row = await store.insert_task(
            org,
            once_task(sink.url + path, expected_status_codes=codes, expected_body_pattern=pattern),
            0,
        )
        await deliver_due(store)
    execution = await store.get_execution(org, row["execution_id"])
    assert execution["status"] == status
    if error is None:
        assert execution["error_message"] is None
    else:
        assert error in execution["error_message"]


# -------------------------------------------------------------------------------- retries


async def test_retry_after_is_honoured_for_the_next_attempt(store: Store) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink:
        row = await store.insert_task(
            org, once_task(sink.url + "/status/503?retry_after=120", retry_attempts=3), 0
        )
        await deliver_due(store)
    (first,) = [e for e in await executions_of(store, org, row["id"]) if e["attempt"] == 1]
    (retry,) = [e for e in await executions_of(store, org, row["id"]) if e["attempt"] == 2]
    gap = (retry["scheduled_for"] - first["finished_at"]).total_seconds()
    assert 119 <= gap <= 121


async def test_no_retry_after_the_last_attempt(store: Store, database_url: str) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink:
        row = await store.insert_task(
            org, once_task(sink.url + "/status/500?retry_after=0", retry_attempts=2), 0
        )
        for _ in range(4):
            await deliver_due(store)
    attempts = sorted(
        (e["attempt"], e["status"]) for e in await executions_of(store, org, row["id"])
    )
    assert attempts == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert len(sink.requests) == 3


# ------------------------------------------------------------------------------ callbacks


async def callbacker(store: Store, http: httpx.AsyncBaseTransport) -> Callbacker:
    return Callbacker(store, Sender(http), concurrency=5)


async def test_callback_gets_the_signed_completion_payload(store: Store) -> None:
    org, _ = await make_org(store)
    async with (
        serve_sink() as target,
        serve_sink() as hook,
        TrioTransport(allow_private=True) as http,
    ):
        row = await store.insert_task(
            org, once_task(target.url + "/status/201", callback_url=hook.url + "/cb"), 0
        )
        await deliver_due(store)
        result = await (await callbacker(store, http)).run_once()
    assert (result.sent, result.delivered) == (1, 1)
    got = hook.requests[0]
    assert got.method == "POST" and got.path == "/cb"
    payload = Webhook(await secret_of(store, org)).verify(got.body, got.headers)
    execution = await store.get_execution(org, row["execution_id"])
    assert payload == {
        "event": "execution.completed",
        "task_id": str(row["id"]),
        "execution_id": str(row["execution_id"]),
        "status": "success",
        "status_code": 201,
        "duration_ms": execution["duration_ms"],
        "response_body": "status 201",
        "error_message": None,
        "attempt": 1,
        "scheduled_for": payload["scheduled_for"],
        "finished_at": payload["finished_at"],
    }
    assert payload["finished_at"].endswith("Z")
    callback = await store.get_callback_for_execution(org, row["execution_id"])
    assert callback is not None
    assert callback["status"] == "delivered" and callback["attempts"] == 1


async def test_failing_callback_target_is_retried_then_given_up(
    store: Store, database_url: str
) -> None:
    org, _ = await make_org(store)
    async with (
        serve_sink() as target,
        serve_sink() as hook,
        TrioTransport(allow_private=True) as http,
    ):
        row = await store.insert_task(
            org, once_task(target.url + "/ok", callback_url=hook.url + "/status/500"), 0
        )
        await deliver_due(store)
        sender = await callbacker(store, http)
        for _ in range(MAX_ATTEMPTS + 1):
            await sender.run_once()
            async with raw_connection(database_url) as conn:  # skip the retry delay
                await sql(
                    conn, "update callbacks set next_attempt_at = now() where status = 'pending'"
                )
    assert len(hook.requests) == MAX_ATTEMPTS
    callback = await store.get_callback_for_execution(org, row["execution_id"])
    assert callback is not None
    assert callback["status"] == "failed" and callback["attempts"] == MAX_ATTEMPTS
    assert callback["last_status_code"] == 500
    # The delivery itself is unaffected by its callback failing.
    assert (await store.get_execution(org, row["execution_id"]))["status"] == "success"


async def test_hanging_callback_target_never_holds_delivery_workers(store: Store) -> None:
    """Callbacks run in their own actor: while every callback hangs, deliveries go on."""
    org, _ = await make_org(store)
    async with (
        serve_sink() as target,
        serve_sink() as hook,
        TrioTransport(allow_private=True) as http,
    ):
        for i in range(5):
            await store.insert_task(
                org, once_task(f"{target.url}/first/{i}", callback_url=hook.url + "/hang"), 0
            )
        await deliver_due(store)
        async with trio.open_nursery() as nursery:
            nursery.start_soon((await callbacker(store, http)).run_once)
            with trio.fail_after(5):
                await hook.wait_for(5)  # every callback is now stuck at its target
                for i in range(5):
                    await store.insert_task(org, once_task(f"{target.url}/second/{i}"), 0)
                result = await deliver_due(store)
            assert result.succeeded == 5
            nursery.cancel_scope.cancel()
    assert len(target.requests) == 10


# -------------------------------------------------------------------------- host backoff


async def test_429_backs_off_that_host_for_that_org_only(store: Store, database_url: str) -> None:
    org, _ = await make_org(store)
    other, _ = await make_org(store, "Other")
    async with serve_sink() as sink:
        await store.insert_task(org, once_task(sink.url + "/status/429?retry_after=60"), 0)
        await deliver_due(store)
        for i in range(3):
            await store.insert_task(org, once_task(f"{sink.url}/later/{i}"), 0)
        await store.insert_task(other, once_task(f"{sink.url}/other-org"), 0)
        result = await deliver_due(store)
    assert result.claimed == 1  # only the other organization's execution
    assert [r.path for r in sink.requests] == ["/status/429?retry_after=60", "/other-org"]
    async with raw_connection(database_url) as conn:
        rows = await sql(
            conn,
            "select organization_id, host, extract(epoch from until - now()) "
            "as left_s from host_backoffs",
        )
    assert [(r["organization_id"], r["host"]) for r in rows] == [(org, "127.0.0.1")]
    assert 55 < rows[0]["left_s"] <= 60
    _, due_in = await Store.claim(store, 10, "t", 5)
    assert due_in is not None and due_in > 50  # the pool sleeps until the backoff ends


async def test_repeated_5xx_backs_off_and_a_success_clears_it(
    store: Store, database_url: str
) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink:
        for _ in range(3):
            await store.insert_task(org, once_task(sink.url + "/status/503"), 0)
        await deliver_due(store)
        async with raw_connection(database_url) as conn:
            backoff = await sql(conn, "select failures, until > now() as active from host_backoffs")
            assert backoff == [{"failures": 3, "active": True}]
            await store.insert_task(org, once_task(sink.url + "/ok"), 0)
            assert (await deliver_due(store)).claimed == 0
            await sql(conn, "update host_backoffs set until = now()")  # backoff over
            assert (await deliver_due(store)).succeeded == 1
            assert await sql(conn, "select * from host_backoffs") == []


# ------------------------------------------------------------------------------ content type


@pytest.mark.parametrize(
    ("task", "content_type"),
    [
        ({"body": {"order": 42}}, "application/json"),
        ({"body": [1, 2]}, "application/json"),
        ({"body": '{"order": 42}'}, "application/json"),  # a string holding a JSON object
        ({"body": "plain words"}, "text/plain; charset=utf-8"),
        ({"body": "[not json"}, "text/plain; charset=utf-8"),
        ({"body": {"a": 1}, "headers": {"content-type": "application/vnd.api+json"}}, None),
        ({}, "absent"),
    ],
)
async def test_a_body_gets_a_content_type_unless_the_task_sets_one(
    store: Store, task: dict[str, Any], content_type: str | None
) -> None:
    """Created through the API as a user would; what the target receives is checked."""
    _, key = await make_org(store)
    app = create_app(store, Settings(allow_private_targets=True), SystemClock())
    async with serve_sink() as sink:
        response = await app.test_client().post(
            "/api/v1/tasks",
            json={"url": sink.url + "/hook", **task},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 202, await response.get_json()
        await deliver_due(store)
    got = sink.requests[0]
    if content_type == "absent":
        assert "content-type" not in got.headers
    elif content_type is None:
        assert got.headers["content-type"] == "application/vnd.api+json"
    else:
        assert got.headers["content-type"] == content_type


# ------------------------------------------------------------------------------ cron retries


@pytest.mark.parametrize(("next_run_in", "retried"), [("1 hour", True), ("2 seconds", False)])
async def test_a_failed_cron_run_is_retried_unless_the_next_run_comes_first(
    store: Store, database_url: str, next_run_in: str, retried: bool
) -> None:
    """A cron task with retry_attempts retries a failed run with backoff (10 s and more), as a
    one-time task does; when its next scheduled run comes before the retry would, that run
    takes over and no retry is made."""
    org, _ = await make_org(store)
    async with serve_sink() as sink:
        task = await store.insert_task(
            org,
            cron_task(
                sink.url + "/status/500",
                "0 * * * *",
                "2030-01-01T00:00:00+00:00",
                interval_minutes=60,
                retry_attempts=2,
            ),
            None,
        )
        await store.trigger_task(org, task["id"])
        async with raw_connection(database_url) as conn:
            await sql(
                conn,
                f"update tasks set next_run_at = now() + interval '{next_run_in}' where id = $1",
                task["id"],
            )
        assert (await deliver_due(store)).failed == 1
    runs = await executions_of(store, org, task["id"])
    pending = [e for e in runs if e["status"] == "pending"]
    assert [e["attempt"] for e in pending] == ([2] if retried else [])
    assert [e["status"] for e in runs if e["attempt"] == 1] == ["failed"]
