"""The official ``qstash`` SDK (PyPI, unchanged) against a running node: ``base_url`` is the
node, the token a Runlater API key. Messages reach a real local sink (its own process), where
the SDK's ``Receiver`` checks their ``Upstash-Signature``; what the SDK made is read back
through ``/api/v1``. The sync client, without the SDK's own retries (``retry=False``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from qstash import QStash, Receiver
from qstash.errors import QStashError, SignatureError
from qstash.message import BatchResponse, EnqueueResponse, PublishResponse

from tests.helpers.process import Serve, SinkProcess, api, base_env, bootstrap, wait_until


@pytest.fixture
def node(database_url: str) -> Iterator[tuple[Serve, str]]:
    """A running node (its own process; loopback targets allowed) and an API key."""
    env = base_env(RUNLATER_DATABASE_URL=database_url)
    serve = Serve(env)
    try:
        serve.start()
        yield serve, bootstrap(env, org="Migrators")
    finally:
        serve.stop()


@pytest.fixture
def sink() -> Iterator[SinkProcess]:
    process = SinkProcess()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def client(node: tuple[Serve, str]) -> QStash:
    serve, key = node
    return QStash(key, base_url=serve.url, retry=False)


def publish_json(client: QStash, **kwargs: Any) -> PublishResponse:
    sent = client.message.publish_json(**kwargs)
    assert isinstance(sent, PublishResponse)
    return sent


def publish(client: QStash, **kwargs: Any) -> PublishResponse:
    sent = client.message.publish(**kwargs)
    assert isinstance(sent, PublishResponse)
    return sent


def enqueue_json(client: QStash, **kwargs: Any) -> EnqueueResponse:
    sent = client.message.enqueue_json(**kwargs)
    assert isinstance(sent, EnqueueResponse)
    return sent


def received(sink: SinkProcess, path: str, count: int = 1) -> list[dict[str, Any]]:
    def arrived() -> bool:
        return len([r for r in sink.requests() if r["path"] == path]) >= count

    wait_until(arrived, 30, f"{count} request(s) to {path}")
    return [r for r in sink.requests() if r["path"] == path]


def task(node: tuple[Serve, str], task_id: str) -> dict[str, Any]:
    reply = api(node[0], node[1], "GET", f"/tasks/{task_id}")
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()["data"]
    return data


def test_published_json_arrives_signed_and_the_receiver_verifies_it(
    client: QStash, node: tuple[Serve, str], sink: SinkProcess
) -> None:
    url = f"{sink.url}/hook/signed"
    sent = publish_json(client, url=url, body={"order": 42}, headers={"X-Trace": "t1"}, retries=1)
    assert not sent.deduplicated
    [request] = received(sink, "/hook/signed")
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["body"] == '{"order": 42}' and headers["x-trace"] == "t1"
    assert headers["content-type"] == "application/json"
    keys = client.signing_key.get()
    receiver = Receiver(keys.current, keys.next)
    receiver.verify(signature=headers["upstash-signature"], body=request["body"], url=url)
    with pytest.raises(SignatureError):
        receiver.verify(signature=headers["upstash-signature"], body='{"order": 43}', url=url)
    with pytest.raises(SignatureError):
        receiver.verify(signature=headers["upstash-signature"], body=request["body"], url=url + "x")
    # After a rotation the old current key is gone, but a receiver given both still verifies
    # messages signed with the new current key (the old next).
    rotated = client.signing_key.rotate()
    assert rotated.current == keys.next
    made = task(node, sent.message_id)
    assert made["origin"] == "qstash" and made["retry_attempts"] == 1


def test_delayed_message_is_shown_and_cancelled(client: QStash, node: tuple[Serve, str]) -> None:
    sent = publish_json(client, url="http://127.0.0.1:9999/later", body={"a": 1}, delay="1h")
    message = client.message.get(sent.message_id)
    assert message.url == "http://127.0.0.1:9999/later" and message.method == "POST"
    assert message.max_retries == 3 and message.body == '{"a": 1}'
    assert message.not_before - message.created_at == pytest.approx(3_600_000, abs=5_000)
    assert message.headers == {"Content-Type": ["application/json"]}
    client.message.cancel(sent.message_id)
    with pytest.raises(QStashError, match="404"):
        client.message.get(sent.message_id)
    assert api(node[0], node[1], "GET", f"/tasks/{sent.message_id}").status_code == 404


def test_deduplication_by_id_and_by_content(client: QStash, node: tuple[Serve, str]) -> None:
    url = "http://127.0.0.1:9999/dedup"
    first = publish_json(client, url=url, body={"n": 1}, deduplication_id="o-1", delay=60)
    again = publish_json(client, url=url, body={"n": 2}, deduplication_id="o-1", delay=60)
    assert again.deduplicated and again.message_id == first.message_id
    one = publish_json(client, url=url, body={"n": 3}, content_based_deduplication=True, delay=60)
    two = publish_json(client, url=url, body={"n": 3}, content_based_deduplication=True, delay=60)
    other = publish_json(client, url=url, body={"n": 4}, content_based_deduplication=True, delay=60)
    assert two.deduplicated and two.message_id == one.message_id
    assert not other.deduplicated and other.message_id != one.message_id


def test_queues_enqueue_and_batch(
    client: QStash, node: tuple[Serve, str], sink: SinkProcess
) -> None:
    client.queue.upsert("mails", parallelism=1, paused=True)
    with pytest.raises(QStashError, match="parallelism"):
        client.queue.upsert("mails", parallelism=5)
    sent = enqueue_json(client, queue="mails", url=f"{sink.url}/q/1", body={"to": "a"})
    queue = client.queue.get("mails")
    assert queue.paused and queue.parallelism == 1 and queue.lag == 1
    assert task(node, sent.message_id)["queue"] == "mails"
    client.queue.resume("mails")
    received(sink, "/q/1")
    answers = client.message.batch_json(
        [
            {"url": f"{sink.url}/b/1", "body": {"i": 1}},
            {"url": f"{sink.url}/b/2", "body": {"i": 2}, "queue": "mails"},
        ]
    )
    assert len(answers) == 2 and isinstance(answers[1], BatchResponse)
    assert task(node, answers[1].message_id)["queue"] == "mails"
    assert received(sink, "/b/2")[0]["body"] == '{"i": 2}'
    assert [q.name for q in client.queue.list()] == ["mails"]


def test_schedules_with_cron_tz_across_the_spring_forward(
    client: QStash, node: tuple[Serve, str]
) -> None:
    schedule_id = client.schedule.create_json(
        destination="http://127.0.0.1:9999/nightly",
        cron="CRON_TZ=Europe/Berlin 30 2 * * *",
        body={"job": "nightly"},
    )
    made = task(node, schedule_id)
    assert made["schedule_type"] == "cron" and made["origin"] == "qstash"
    assert made["cron_expression"] == "30 2 * * *" and made["timezone"] == "Europe/Berlin"
    preview = api(
        node[0],
        node[1],
        "GET",
        "/cron/preview",
        params={
            "expression": made["cron_expression"],
            "timezone": made["timezone"],
            "after": "2026-03-27T12:00:00Z",
            "count": "3",
        },
    )
    # 02:30 CET; on 29 March 02:30 does not exist: once, at the jump (03:00 CEST); then CEST.
    assert preview.json()["data"]["next_runs"] == [
        "2026-03-28T01:30:00.000Z",
        "2026-03-29T01:00:00.000Z",
        "2026-03-30T00:30:00.000Z",
    ]
    listed = client.schedule.list()
    assert [s.schedule_id for s in listed] == [schedule_id]
    assert listed[0].cron == "CRON_TZ=Europe/Berlin 30 2 * * *" and not listed[0].paused
    client.schedule.pause(schedule_id)
    assert client.schedule.get(schedule_id).paused
    assert task(node, schedule_id)["enabled"] is False
    client.schedule.resume(schedule_id)
    assert not client.schedule.get(schedule_id).paused
    client.schedule.delete(schedule_id)
    assert client.schedule.list() == []


def test_a_failing_target_lands_in_the_dlq(client: QStash, sink: SinkProcess) -> None:
    url = f"{sink.url}/status/500"
    sent = publish(client, url=url, body="boom", retries=0)
    received(sink, "/status/500")

    def listed() -> bool:
        return bool(client.dlq.list().messages)

    wait_until(listed, 30, "the dead letter")
    [letter] = client.dlq.list().messages
    assert letter.message_id == sent.message_id and letter.response_status == 500
    assert letter.url == url and letter.body == "boom" and letter.max_retries == 0
    assert client.dlq.get(letter.dlq_id).dlq_id == letter.dlq_id
    client.dlq.delete(letter.dlq_id)
    assert client.dlq.list().messages == []
