"""The dead-letter queue on real Postgres with real local HTTP servers (docs/dlq.md): which
failures land there (the recorder's final failures, the rescuer's third interruption; never a
failure with a retry to come, a cancelled run or a deleted task's), the failure callback sent
once, signed, and ``/api/v1/dlq``: filters, pages, retry, delete, isolation, strict input."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from standardwebhooks import Webhook

from runlater.actors.callbacker import Callbacker
from runlater.delivery.client import Sender
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from tests.helpers.api import Api, assert_error, deliver_due
from tests.helpers.db import raw_connection, sql
from tests.helpers.sink import serve_sink


async def letters(api: Api, query: str = "") -> list[dict[str, Any]]:
    reply = await api.get(f"/dlq{query}")
    assert reply.status == 200, reply.body
    return reply.body["data"]


async def failing_task(api: Api, url: str, **fields: Any) -> dict[str, Any]:
    reply = await api.post("/tasks", json={"url": url, "retry_attempts": 0, **fields})
    assert reply.status == 202, reply.body
    return reply.body["data"]


async def dsn_sql(database_url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    async with raw_connection(database_url) as conn:
        return await sql(conn, query, *args)


# ------------------------------------------------------------------- what lands in the queue


async def test_a_final_failure_lands_once_a_failure_with_a_retry_to_come_does_not(
    api: Api, store: Store
) -> None:
    async with serve_sink() as sink:
        task = await failing_task(
            api, sink.url + "/status/503?retry_after=0", retry_attempts=1, name="sync orders"
        )
        await deliver_due(store)
        assert await letters(api) == []  # attempt 1 failed, attempt 2 is pending
        await deliver_due(store)
    [letter] = await letters(api)
    chain = (await api.get(f"/tasks/{task['task_id']}/executions")).body["data"]
    last = next(e for e in chain if e["attempt"] == 2)
    assert letter["execution_id"] == last["id"] and letter["task_id"] == task["task_id"]
    assert letter["task_name"] == "sync orders"
    assert letter["url"] == sink.url + "/status/503?retry_after=0"
    assert (letter["method"], letter["status"], letter["status_code"]) == ("POST", "failed", 503)
    assert letter["error_message"] == "HTTP 503" and letter["attempt"] == 2
    assert letter["response_body"] == "status 503" and letter["queue"] is None
    assert letter["failed_at"].endswith("Z") and letter["inserted_at"].endswith("Z")
    got = await api.get(f"/dlq/{letter['id']}")
    assert got.status == 200 and got.body["data"] == letter


async def test_the_rescuers_third_interruption_lands_a_cancelled_run_does_not(
    api: Api, store: Store, database_url: str
) -> None:
    task = await failing_task(api, "http://127.0.0.1:9999/never", name="stuck")
    for _ in range(3):
        claimed, _ = await store.claim(5, "dead-node", 30)
        assert [c.id for c in claimed] == [UUID(task["execution_id"])]
        await dsn_sql(
            database_url,
            "update executions set lease_expires_at = now() - interval '1 s' where id = $1",
            claimed[0].id,
        )
        await store.rescue_expired()
    [letter] = await letters(api)
    assert letter["execution_id"] == task["execution_id"]
    assert letter["error_message"] == "interrupted 3 times: the node running it stopped"
    assert letter["status_code"] is None and letter["status"] == "failed"
    # A deleted task's pending run is cancelled (no letter), and its letters go with it.
    later = await api.post("/tasks", json={"url": "http://127.0.0.1:9999/x", "delay": "1h"})
    assert (await api.delete(f"/tasks/{later.body['data']['task_id']}")).status == 204
    assert len(await letters(api)) == 1
    assert (await api.delete(f"/tasks/{task['task_id']}")).status == 204
    assert await letters(api) == []


async def test_the_failure_callback_is_sent_once_signed_beside_the_completion_callback(
    api: Api, store: Store
) -> None:
    async with (
        serve_sink() as target,
        serve_sink() as hook,
        TrioTransport(allow_private=True) as http,
    ):
        task = await failing_task(
            api,
            target.url + "/status/500",
            callback_url=hook.url + "/completed",
            failure_callback_url=hook.url + "/failed",
        )
        await deliver_due(store)
        callbacker = Callbacker(store, Sender(http), concurrency=5)
        assert (await callbacker.run_once()).delivered == 2
        assert (await callbacker.run_once()).sent == 0  # once
    [letter] = await letters(api)
    by_path = {r.path: r for r in hook.requests}
    assert sorted(by_path) == ["/completed", "/failed"] and len(hook.requests) == 2
    failed = by_path["/failed"]
    secret = (await api.get("/org")).body["data"]["webhook_secret"]
    payload = Webhook(secret).verify(failed.body, failed.headers)
    assert failed.headers["x-runlater-event"] == "execution.failed"
    assert by_path["/completed"].headers["x-runlater-event"] == "execution.completed"
    assert failed.headers["x-runlater-execution-id"] == task["execution_id"]
    assert payload == {
        "event": "execution.failed",
        "dlq_id": letter["id"],
        "task_id": task["task_id"],
        "execution_id": task["execution_id"],
        "status": "failed",
        "status_code": 500,
        "duration_ms": payload["duration_ms"],
        "response_body": "status 500",
        "error_message": "HTTP 500",
        "attempt": 1,
        "url": target.url + "/status/500",
        "scheduled_for": payload["scheduled_for"],
        "finished_at": payload["finished_at"],
    }
    assert payload["finished_at"].endswith("Z") and isinstance(payload["duration_ms"], int)


# ---------------------------------------------------------------------- filters and pages


async def test_filters_and_pages(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        # One at a time: letters of one statement share their time (their order is by id).
        a = await failing_task(api, sink.url + "/status/500?to=orders", name="a", queue="billing")
        await deliver_due(store)
        b = await failing_task(api, sink.url + "/status/404?to=Invoices", name="b")
        await deliver_due(store)
        c = await failing_task(api, sink.url + "/status/500?to=invoices", name="c")
        await deliver_due(store)
    everything = await letters(api)
    assert [x["task_name"] for x in everything] == ["c", "b", "a"]  # newest first
    by_task = {x["task_name"]: x for x in everything}

    async def names(query: str) -> list[str]:
        return [x["task_name"] for x in await letters(api, query)]

    assert await names(f"?task_id={a['task_id']}") == ["a"]
    assert await names("?queue=billing") == ["a"]
    assert await names("?url=INVOICES") == ["c", "b"]  # a piece, any case
    assert await names("?status_code=500") == ["c", "a"]
    assert await names(f"?url=invoices&status_code=404&task_id={b['task_id']}") == ["b"]
    failed_at = by_task["b"]["failed_at"]
    assert "b" in await names(f"?since={failed_at}")
    assert "b" not in await names(f"?until={failed_at}")
    assert await names("?since=2999-01-01T00:00:00Z") == []
    first = await api.get("/dlq?limit=2")
    assert first.body["has_more"] and first.body["next_cursor"] == by_task["b"]["id"]
    rest = await api.get(f"/dlq?limit=2&before={first.body['next_cursor']}")
    assert [x["task_name"] for x in rest.body["data"]] == ["a"]
    assert not rest.body["has_more"] and rest.body["next_cursor"] is None
    assert await names("?limit=1&offset=2") == ["a"]
    assert c["task_id"] in {x["task_id"] for x in everything}


async def test_lists_cut_response_bodies_get_has_them_whole(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        # /body/<text> answers 200 with the text: failed by the task's expected status codes.
        await failing_task(api, sink.url + "/body/" + "y" * 1500, expected_status_codes="201")
        await deliver_due(store)
    [letter] = await letters(api)
    assert letter["response_body"] == "y" * 1024
    whole = await api.get(f"/dlq/{letter['id']}")
    assert whole.body["data"]["response_body"] == "y" * 1500
    assert whole.body["data"]["error_message"].startswith("HTTP 200, expected 201")


# ------------------------------------------------------------------------ retry and delete


async def test_retry_one_runs_a_new_attempt_that_reaches_the_target(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        task = await failing_task(api, sink.url + "/status/500", name="webhook")
        await deliver_due(store)
        [letter] = await letters(api)
        # The receiver is fixed (the task now calls a path that answers 200), then redriven.
        fixed = await api.patch(f"/tasks/{task['task_id']}", json={"url": sink.url + "/ok"})
        assert fixed.status == 200, fixed.body
        retried = await api.post(f"/dlq/{letter['id']}/retry")
        assert retried.status == 202, retried.body
        data = retried.body["data"]
        assert data["dead_letter_id"] == letter["id"]
        assert (data["status"], data["attempt"]) == ("pending", 2)
        assert await letters(api) == []
        assert (await api.get(f"/dlq/{letter['id']}")).status == 404
        assert (await deliver_due(store)).succeeded == 1
    assert [r.path for r in sink.requests] == ["/status/500", "/ok"]
    assert {r.headers["webhook-id"] for r in sink.requests} == {task["execution_id"]}
    execution = (await api.get(f"/executions/{data['execution_id']}")).body["data"]
    assert execution["status"] == "success"
    again = await api.post(f"/dlq/{letter['id']}/retry")
    assert_error(again, 404, "not_found")


async def test_retry_many_by_ids_or_filter_and_a_chain_at_its_last_attempt_starts_afresh(
    api: Api, store: Store, database_url: str
) -> None:
    async with serve_sink() as sink:
        for name in ("a", "b", "c"):
            await failing_task(api, sink.url + f"/status/500?task={name}", name=name)
        await deliver_due(store)
        by_name = {x["task_name"]: x for x in await letters(api)}
        unknown = "01935e2a-7c1e-7b3a-9f3e-2d7c1a4b5e6f"
        reply = await api.post("/dlq/retry", json={"ids": [by_name["a"]["id"], unknown]})
        assert reply.status == 202, reply.body
        assert reply.body["data"]["retried"] == 1 and reply.body["data"]["not_found"] == [unknown]
        assert reply.body["data"]["executions"][0]["attempt"] == 2
        # c's chain is at its last possible attempt (11): its retry is attempt 1 of a new chain.
        await dsn_sql(
            database_url,
            "update executions set attempt = 11, root_execution_id = id where id = $1",
            UUID(by_name["c"]["execution_id"]),
        )
        reply = await api.post("/dlq/retry", json={"filter": {"url": "task=c"}})
        assert reply.status == 202, reply.body
        [made] = reply.body["data"]["executions"]
        assert (made["attempt"], reply.body["data"]["has_more"]) == (1, False)
        assert [x["task_name"] for x in await letters(api)] == ["b"]
        everything = await api.post("/dlq/retry", json={"filter": {}})
        assert everything.body["data"]["retried"] == 1
        assert await letters(api) == []
        # Three failures in a row put the host in backoff; the retries should run now.
        await dsn_sql(database_url, "delete from host_backoffs")
        await deliver_due(store)  # each fails again, for good: three new letters
    assert sorted(x["task_name"] for x in await letters(api)) == ["a", "b", "c"]
    assert len(sink.requests) == 6


async def test_a_manual_retry_of_the_execution_takes_its_letter_out_too(
    api: Api, store: Store
) -> None:
    async with serve_sink() as sink:
        task = await failing_task(api, sink.url + "/status/500")
        await deliver_due(store)
        assert len(await letters(api)) == 1
        retried = await api.post(f"/executions/{task['execution_id']}/retry")
        assert retried.status == 202, retried.body
        assert await letters(api) == []
        await deliver_due(store)
    [letter] = await letters(api)
    assert letter["attempt"] == 2


async def test_delete_one_and_many(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        tasks = [await failing_task(api, sink.url + f"/status/500?n={n}") for n in range(4)]
        await deliver_due(store)
    ids = {x["url"][-1]: x["id"] for x in await letters(api)}  # by n
    assert (await api.delete(f"/dlq/{ids['0']}")).status == 204
    assert_error(await api.delete(f"/dlq/{ids['0']}"), 404, "not_found")
    reply = await api.post("/dlq/delete", json={"ids": [ids["1"], ids["0"]]})
    assert reply.status == 200 and reply.body["data"] == {
        "deleted": 1,
        "not_found": [ids["0"]],
        "has_more": False,
    }
    reply = await api.post("/dlq/delete", json={"filter": {"url": "n=3"}})
    assert reply.body["data"]["deleted"] == 1
    assert [x["id"] for x in await letters(api)] == [ids["2"]]
    # The executions stay in their tasks' history.
    execution = await api.get(f"/executions/{tasks[0]['execution_id']}")
    assert execution.status == 200 and execution.body["data"]["status"] == "failed"


# ----------------------------------------------------------------- isolation and strict input


async def test_another_organizations_letters_are_not_found_and_untouched(
    api: Api, other: Api, store: Store
) -> None:
    async with serve_sink() as sink:
        task = await failing_task(api, sink.url + "/status/500")
        await deliver_due(store)
    [letter] = await letters(api)
    for method, path in (
        ("GET", f"/dlq/{letter['id']}"),
        ("DELETE", f"/dlq/{letter['id']}"),
        ("POST", f"/dlq/{letter['id']}/retry"),
    ):
        assert_error(await other.call(method, path), 404, "not_found")
    assert await letters(other) == []
    assert await letters(other, f"?task_id={task['task_id']}") == []
    for action in ("retry", "delete"):
        reply = await other.post(f"/dlq/{action}", json={"ids": [letter["id"]]})
        assert reply.body["data"]["not_found"] == [letter["id"]]
        reply = await other.post(f"/dlq/{action}", json={"filter": {}})
        assert reply.body["data"]["has_more"] is False
    assert await letters(api) == [letter]


async def test_unknown_fields_and_bad_values_are_refused(api: Api) -> None:
    error = assert_error(await api.post("/dlq/retry", json={"idz": []}), 422, "validation_error")
    assert "did you mean 'ids'" in error["details"]["idz"][0]
    error = assert_error(
        await api.post("/dlq/delete", json={"filter": {"statuscode": 500, "since": "yesterday"}}),
        422,
        "validation_error",
        {"filter.statuscode", "filter.since"},
    )
    assert "did you mean 'status_code'" in error["details"]["filter.statuscode"][0]
    assert_error(
        await api.post("/dlq/retry", json={"ids": ["x"], "filter": {}}), 422, "validation_error"
    )
    assert_error(await api.post("/dlq/retry", json={"ids": []}), 422, "validation_error")
    assert_error(
        await api.post("/dlq/retry", json={"ids": ["nope"]}), 422, "validation_error", {"ids[0]"}
    )
    too_many = {"ids": ["01935e2a-7c1e-7b3a-9f3e-2d7c1a4b5e6f"] * 101}
    assert_error(await api.post("/dlq/retry", json=too_many), 422, "validation_error", {"ids"})
    error = assert_error(await api.get("/dlq?status=500"), 422, "validation_error", {"status"})
    assert_error(await api.get("/dlq?status_code=abc"), 422, "validation_error", {"status_code"})
    assert_error(await api.get("/dlq?task_id=abc"), 422, "validation_error", {"task_id"})
    assert_error(await api.get("/dlq?before=abc"), 422, "validation_error", {"before"})
    assert_error(await api.get("/dlq/not-an-id"), 404, "not_found")
