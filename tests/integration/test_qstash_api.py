"""The QStash-compatible API (/v2) over HTTP against the app and a real database: what each
route answers, its 400s naming the header, QStash's error shape, and that a /v2 message is a
task of /api/v1 scoped to its organization."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from quart_trio import QuartTrio

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.api import Api, deliver_due
from tests.helpers.dashboard import Visitor, sign_in
from tests.helpers.factories import make_org
from tests.helpers.sink import serve_sink

TARGET = "http://127.0.0.1:9999/hook"


@dataclass
class V2:
    """One API key's view of /v2."""

    app: QuartTrio
    key: str

    async def call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
        json_body: Any = None,
    ) -> tuple[int, Any]:
        sent = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        kwargs: dict[str, Any] = {"method": method, "headers": sent}
        if json_body is not None:
            kwargs["json"] = json_body
        elif data is not None:
            kwargs["data"] = data
        response = await self.app.test_client().open("/v2" + path, **kwargs)
        text = await response.get_data(as_text=True)
        return response.status_code, json.loads(text) if text else None

    async def publish(
        self, url: str = TARGET, body: str = '{"hello":"world"}', **headers: str
    ) -> tuple[int, Any]:
        sent = {"Content-Type": "application/json", **headers}
        return await self.call("POST", f"/publish/{url}", headers=sent, data=body)


@pytest.fixture
async def v2(api: Api) -> V2:
    assert api.key is not None
    return V2(api.app, api.key)


@pytest.fixture
async def v2_other(other: Api) -> V2:
    assert other.key is not None
    return V2(other.app, other.key)


def h(**names: str) -> dict[str, str]:
    """Header names from keyword names: Upstash_Retries -> Upstash-Retries."""
    return {k.replace("_", "-"): v for k, v in names.items()}


async def test_a_published_message_is_a_task_of_the_api_and_a_message_of_v2(
    v2: V2, api: Api
) -> None:
    status, body = await v2.call(
        "POST",
        f"/publish/{TARGET}?a=1&b=2",
        headers=h(
            **{"Content-Type": "application/json"},
            Upstash_Method="PUT",
            Upstash_Retries="2",
            Upstash_Timeout="10s",
            Upstash_Delay="1h30m",
            Upstash_Forward_X_Trace="abc",
            Upstash_Callback="http://127.0.0.1:9999/cb",
            Upstash_Failure_Callback="http://127.0.0.1:9999/failed",
            Upstash_Label="billing",
        ),
        data='{"n":1}',
    )
    assert status == 201, body
    assert set(body) == {"messageId"}
    task = (await api.get(f"/tasks/{body['messageId']}")).body["data"]
    assert task["origin"] == "qstash" and task["schedule_type"] == "once"
    assert task["url"] == f"{TARGET}?a=1&b=2" and task["method"] == "PUT"
    assert task["headers"] == {"Content-Type": "application/json", "X-Trace": "abc"}
    assert task["body"] == '{"n":1}' and task["name"] == "billing"
    assert task["retry_attempts"] == 2 and task["timeout_ms"] == 10_000
    assert task["callback_url"] == "http://127.0.0.1:9999/cb"
    assert task["failure_callback_url"] == "http://127.0.0.1:9999/failed"
    status, message = await v2.call("GET", f"/messages/{body['messageId']}")
    assert status == 200
    assert message["messageId"] == body["messageId"] and message["method"] == "PUT"
    assert message["url"] == f"{TARGET}?a=1&b=2" and message["maxRetries"] == 2
    assert message["header"]["X-Trace"] == ["abc"] and message["body"] == '{"n":1}'
    assert message["notBefore"] - message["createdAt"] == pytest.approx(5_400_000, abs=2000)
    assert message["failureCallback"] == "http://127.0.0.1:9999/failed"
    # Cancelled: gone from /v2 and /api/v1, its execution cancelled.
    assert (await v2.call("DELETE", f"/messages/{body['messageId']}"))[0] == 200
    assert (await v2.call("GET", f"/messages/{body['messageId']}"))[0] == 404
    assert (await api.get(f"/tasks/{body['messageId']}")).status == 404


async def test_defaults_are_qstash_s_and_a_binary_body_is_kept_byte_exact(v2: V2) -> None:
    status, body = await v2.call(
        "POST", f"/publish/{TARGET}", data=b"\x00\xff\xfe raw", headers={"Content-Type": "x/y"}
    )
    assert status == 201, body
    _, message = await v2.call("GET", f"/messages/{body['messageId']}")
    assert message["method"] == "POST" and message["maxRetries"] == 3
    assert message["bodyBase64"] == "AP/+IHJhdw==" and "body" not in message


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        (h(Upstash_Flow_Control_Key="k"), "Upstash-Flow-Control-Key"),
        (h(Upstash_Flow_Control_Value="parallelism=2"), "Upstash-Flow-Control-Value"),
        (h(Upstash_Retry_Delay="1000"), "Upstash-Retry-Delay"),
        (h(Upstash_Callback_X_Y="1"), "Upstash-Callback-X-Y"),
        (h(Upstash_Failure_Callback_X_Y="1"), "Upstash-Failure-Callback-X-Y"),
        (h(Upstash_Redact_Fields="body"), "Upstash-Redact-Fields"),
        (h(Upstash_Something_New="1"), "Upstash-Something-New"),
        (h(Upstash_Cron="* * * * *"), "Upstash-Cron"),
        (h(Upstash_Retries="11"), "Upstash-Retries"),
        (h(Upstash_Retries="-1"), "Upstash-Retries"),
        (h(Upstash_Delay="5 weeks"), "Upstash-Delay"),
        (h(Upstash_Delay="367d"), "Upstash-Delay"),
        (h(Upstash_Timeout="301s"), "Upstash-Timeout"),
        (h(Upstash_Timeout="0s"), "Upstash-Timeout"),
        (h(Upstash_Not_Before="soon"), "Upstash-Not-Before"),
        (h(Upstash_Method="BREW"), "Upstash-Method"),
        (h(Upstash_Callback="ftp://x"), "Upstash-Callback"),
        (h(Upstash_Forward_Host="evil"), "Upstash-Forward-*"),
        (h(Upstash_Content_Based_Deduplication="yes"), "Upstash-Content-Based-Deduplication"),
        (h(Upstash_Deduplication_Id="x" * 201), "Upstash-Deduplication-Id"),
    ],
)
async def test_what_runlater_cannot_do_is_a_400_naming_the_header(
    v2: V2, api: Api, headers: dict[str, str], named: str
) -> None:
    status, body = await v2.publish(**headers)
    assert status == 400, body
    assert set(body) == {"error"} and body["error"].startswith(f"{named}: "), body
    assert (await api.get("/tasks")).body["data"] == []


async def test_a_destination_that_is_not_a_url_is_refused(v2: V2) -> None:
    status, body = await v2.call("POST", "/publish/my-url-group", data="x")
    assert status == 400 and body["error"].startswith("destination: ")
    assert "URL groups" in body["error"]


async def test_errors_have_qstash_s_shape(v2: V2) -> None:
    response = await v2.app.test_client().get("/v2/keys")
    assert response.status_code == 401
    assert set(await response.get_json()) == {"error"}
    for method, path in (
        ("GET", "/messages/00000000-0000-4000-8000-000000000000"),
        ("GET", "/messages/not-an-id"),
        ("GET", "/schedules/00000000-0000-4000-8000-000000000000"),
        ("GET", "/queues/nope"),
        ("GET", "/dlq/00000000-0000-4000-8000-000000000000"),
        ("GET", "/topics"),
    ):
        status, body = await v2.call(method, path)
        assert status == 404 and isinstance(body["error"], str), (path, body)
    status, body = await v2.call("POST", "/batch", data="{not json")
    assert status == 400 and isinstance(body["error"], str)


async def test_another_organization_s_ids_are_not_found(v2: V2, v2_other: V2) -> None:
    _, message = await v2.publish()
    status, schedule = await v2.call(
        "POST", f"/schedules/{TARGET}", headers=h(Upstash_Cron="0 * * * *")
    )
    assert status == 201
    mid, sid = message["messageId"], schedule["scheduleId"]
    for method, path in (
        ("GET", f"/messages/{mid}"),
        ("DELETE", f"/messages/{mid}"),
        ("GET", f"/schedules/{sid}"),
        ("DELETE", f"/schedules/{sid}"),
        ("PATCH", f"/schedules/{sid}/pause"),
        ("PATCH", f"/schedules/{sid}/resume"),
    ):
        status, body = await v2_other.call(method, path)
        assert status == 404, (method, path, body)
    assert (await v2_other.call("GET", "/schedules"))[1] == []
    # A schedule is not a message, nor a message a schedule.
    assert (await v2.call("GET", f"/messages/{sid}"))[0] == 404
    assert (await v2.call("GET", f"/schedules/{mid}"))[0] == 404
    assert (await v2.call("GET", f"/messages/{mid}"))[0] == 200


async def test_deduplication_answers_the_first_message(v2: V2, api: Api) -> None:
    _, first = await v2.publish(**h(Upstash_Deduplication_Id="order-7"))
    _, again = await v2.publish(body="other body", **h(Upstash_Deduplication_Id="order-7"))
    assert again == {"messageId": first["messageId"], "deduplicated": True}
    _, c1 = await v2.publish(**h(Upstash_Content_Based_Deduplication="true"))
    _, c2 = await v2.publish(**h(Upstash_Content_Based_Deduplication="true"))
    _, c3 = await v2.publish(body="{}", **h(Upstash_Content_Based_Deduplication="true"))
    assert c2 == {"messageId": c1["messageId"], "deduplicated": True}
    assert c3["messageId"] not in (c1["messageId"], first["messageId"])
    assert len((await api.get("/tasks")).body["data"]) == 3


async def test_a_deduplication_id_is_per_organization(v2: V2, v2_other: V2) -> None:
    _, mine = await v2.publish(**h(Upstash_Deduplication_Id="same"))
    _, theirs = await v2_other.publish(**h(Upstash_Deduplication_Id="same"))
    assert "deduplicated" not in theirs and theirs["messageId"] != mine["messageId"]


async def test_enqueue_and_batch(v2: V2, api: Api) -> None:
    status, body = await v2.call("POST", f"/enqueue/emails/{TARGET}", data="hi")
    assert status == 201, body
    task = (await api.get(f"/tasks/{body['messageId']}")).body["data"]
    assert task["queue"] == "emails"
    status, answers = await v2.call(
        "POST",
        "/batch",
        json_body=[
            {"destination": TARGET, "headers": {"Upstash-Delay": "10s"}, "body": "a"},
            {"destination": TARGET, "headers": {}, "body": "b", "queue": "emails"},
        ],
    )
    assert status == 201, answers
    assert [set(a) for a in answers] == [{"messageId"}, {"messageId"}]
    second = (await api.get(f"/tasks/{answers[1]['messageId']}")).body["data"]
    assert second["queue"] == "emails" and second["body"] == "b"
    # One bad item: nothing of the batch is made, and the item is named.
    status, body = await v2.call(
        "POST",
        "/batch",
        json_body=[
            {"destination": TARGET, "body": "ok"},
            {"destination": TARGET, "headers": {"Upstash-Flow-Control-Key": "k"}},
        ],
    )
    assert status == 400 and body["error"].startswith("batch[1]: Upstash-Flow-Control-Key")
    assert len((await api.get("/tasks")).body["data"]) == 3


async def test_queues_run_one_at_a_time(v2: V2, api: Api) -> None:
    status, body = await v2.call(
        "POST", "/queues", json_body={"queueName": "q1", "parallelism": 2, "paused": False}
    )
    assert status == 400 and body["error"].startswith("parallelism: ")
    ok = {"queueName": "q1", "parallelism": 1, "paused": True}
    assert (await v2.call("POST", "/queues", json_body=ok))[0] == 200
    status, queue = await v2.call("GET", "/queues/q1")
    assert status == 200
    assert queue["name"] == "q1" and queue["paused"] is True and queue["parallelism"] == 1
    assert queue["lag"] == 0 and queue["createdAt"] > 0
    assert (await v2.call("POST", "/queues/q1/resume"))[0] == 200
    assert (await api.get("/queues")).body["data"][0]["paused"] is False
    await v2.call("POST", f"/enqueue/q1/{TARGET}", data="x")
    _, queues = await v2.call("GET", "/queues")
    assert [(q["name"], q["lag"]) for q in queues] == [("q1", 1)]
    status, body = await v2.call("DELETE", "/queues/q1")
    assert status == 400 and "still used" in body["error"]
    await v2.call("POST", "/queues", json_body={"queueName": "empty"})
    assert (await v2.call("DELETE", "/queues/empty"))[0] == 200
    assert (await v2.call("GET", "/queues/empty"))[0] == 404
    status, body = await v2.call("POST", "/queues", json_body={"queueName": "q", "lag": 1})
    assert status == 400 and body["error"].startswith("lag: ")


async def test_schedules_are_cron_tasks(v2: V2, api: Api) -> None:
    status, body = await v2.call(
        "POST",
        f"/schedules/{TARGET}",
        headers=h(Upstash_Cron="CRON_TZ=Europe/Berlin 30 2 * * *", Upstash_Retries="1"),
        data="tick",
    )
    assert status == 201, body
    sid = body["scheduleId"]
    task = (await api.get(f"/tasks/{sid}")).body["data"]
    assert task["schedule_type"] == "cron" and task["origin"] == "qstash"
    assert task["cron_expression"] == "30 2 * * *" and task["timezone"] == "Europe/Berlin"
    assert task["method"] == "POST" and task["retry_attempts"] == 1
    _, listed = await v2.call("GET", "/schedules")
    assert [s["scheduleId"] for s in listed] == [sid]
    schedule = listed[0]
    assert schedule["cron"] == "CRON_TZ=Europe/Berlin 30 2 * * *"
    assert schedule["destination"] == TARGET and schedule["body"] == "tick"
    assert schedule["isPaused"] is False and schedule["nextScheduleTime"] > 0
    assert (await v2.call("PATCH", f"/schedules/{sid}/pause"))[0] == 200
    assert (await v2.call("GET", f"/schedules/{sid}"))[1]["isPaused"] is True
    assert (await api.get(f"/tasks/{sid}")).body["data"]["enabled"] is False
    assert (await v2.call("PATCH", f"/schedules/{sid}/resume"))[0] == 200
    assert (await api.get(f"/tasks/{sid}")).body["data"]["enabled"] is True
    # Replaced in place with Upstash-Schedule-Id.
    status, body = await v2.call(
        "POST",
        f"/schedules/{TARGET}/v2",
        headers=h(Upstash_Cron="*/10 * * * *", Upstash_Schedule_Id=sid),
    )
    assert status == 200 and body == {"scheduleId": sid}
    task = (await api.get(f"/tasks/{sid}")).body["data"]
    assert task["url"] == f"{TARGET}/v2" and task["timezone"] == "UTC"
    assert task["retry_attempts"] == 3 and task["body"] is None
    assert (await v2.call("DELETE", f"/schedules/{sid}"))[0] == 200
    assert (await v2.call("GET", "/schedules"))[1] == []
    for headers, named in (
        (h(), "Upstash-Cron"),
        (h(Upstash_Cron="not cron"), "Upstash-Cron"),
        (h(Upstash_Cron="CRON_TZ=Mars/Base 0 * * * *"), "Upstash-Cron"),
        (h(Upstash_Cron="0 * * * *", Upstash_Delay="10s"), "Upstash-Delay"),
        (h(Upstash_Cron="0 * * * *", Upstash_Schedule_Id="mine"), "Upstash-Schedule-Id"),
    ):
        status, body = await v2.call("POST", f"/schedules/{TARGET}", headers=headers)
        assert status == 400 and body["error"].startswith(f"{named}: "), body


async def test_signing_keys_rotate_next_into_current(v2: V2, store: Store) -> None:
    status, keys = await v2.call("GET", "/keys")
    assert status == 200 and set(keys) == {"current", "next"}
    assert keys["current"].startswith("sig_") and keys["current"] != keys["next"]
    status, rotated = await v2.call("POST", "/keys/rotate")
    assert status == 200 and rotated["current"] == keys["next"]
    assert rotated["next"] not in (keys["current"], keys["next"])
    assert (await v2.call("GET", "/keys"))[1] == rotated


async def test_the_dlq_lists_gets_and_deletes_what_failed_for_good(
    v2: V2, v2_other: V2, store: Store
) -> None:
    async with serve_sink() as sink:
        _, sent = await v2.publish(url=f"{sink.url}/status/500", **h(Upstash_Retries="0"))
        await deliver_due(store)
    status, page = await v2.call("GET", "/dlq")
    assert status == 200, page
    [letter] = page["messages"]
    assert letter["messageId"] == sent["messageId"] and letter["responseStatus"] == 500
    assert letter["url"] == f"{sink.url}/status/500" and letter["method"] == "POST"
    assert letter["body"] == '{"hello":"world"}' and letter["maxRetries"] == 0
    assert "cursor" not in page
    filtered = await v2.call("GET", f"/dlq?messageId={sent['messageId']}&responseStatus=500")
    assert [m["dlqId"] for m in filtered[1]["messages"]] == [letter["dlqId"]]
    assert (await v2.call("GET", "/dlq?responseStatus=404"))[1]["messages"] == []
    status, body = await v2.call("GET", "/dlq?topicName=t")
    assert status == 400 and body["error"].startswith("topicName: ")
    assert (await v2_other.call("GET", f"/dlq/{letter['dlqId']}"))[0] == 404
    assert (await v2_other.call("DELETE", f"/dlq/{letter['dlqId']}"))[0] == 404
    assert (await v2.call("GET", f"/dlq/{letter['dlqId']}"))[1]["dlqId"] == letter["dlqId"]
    assert (await v2.call("DELETE", f"/dlq/{letter['dlqId']}"))[0] == 200
    assert (await v2.call("GET", "/dlq"))[1]["messages"] == []


async def test_v2_calls_are_audited(v2: V2, api: Api, store: Store) -> None:
    org, key = await make_org(store, "Audited")
    await V2(api.app, key).publish()
    entries = (await Api(api.app, key).get("/audit-log")).body["data"]
    assert [e["action"] for e in entries] == ["POST /v2/publish/<path:target>"]
    assert org is not None


async def test_the_settings_page_shows_and_rotates_the_signing_keys(store: Store) -> None:
    org, _ = await make_org(store)
    owner = Visitor(create_app(store, Settings(), SystemClock()).test_client())
    await sign_in(store, owner, "owner@acme.test")
    keys = await store.qstash_signing_keys(org)
    page = await owner.get("/settings")
    assert page.status == 200 and keys["current"] in page.text and keys["next"] in page.text
    rotated = await owner.submit("/settings", "/settings/qstash-keys/rotate")
    assert rotated.status == 303
    now = await store.qstash_signing_keys(org)
    assert now["current"] == keys["next"] and now["next"] != keys["next"]
    entries = await store.search_audit_log(org, action="keys", actor_type="user", limit=5, offset=0)
    assert [e["action"] for e in entries] == ["POST /v2/keys/rotate"]
