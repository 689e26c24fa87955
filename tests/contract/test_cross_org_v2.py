"""Organization isolation of the QStash-compatible API, generated from the spec like
``test_cross_org.py`` (every ``/v2`` operation of ``/api/v1/openapi.json``, none listed by hand).

QStash's ids (messages, schedules, dead letters) are Runlater's: organization B naming one of
A's answers ``404`` in QStash's error shape (``{"error": "..."}``), shows nothing of A's, and
changes nothing of A's; A's own call on it is not a 404. A queue is a name inside the caller's
own organization (as on ``/api/v1/queues``) and a destination is a URL the caller gives: B using
A's values acts on B's own namespace and must still leak and change nothing of A's. Lists
(``GET`` answering a JSON array, or QStash's ``{"messages"|"schedules": [...]}``) never show
another organization's resources.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from tests.contract.spec_tools import operations
from tests.contract.test_cross_org import (
    CLOSED_TARGET,
    World,
    path_parameters,
    snapshot,
    unique,
)
from tests.contract.test_cross_org import world as world  # the fixture

V2 = "/v2/"


async def a_message(world: World) -> str:
    """A's message, due in an hour (so it stays pending: get and cancel act on it)."""
    label = unique("alice-message")
    reply = await world.alice.call(
        "POST",
        f"/v2/publish/{CLOSED_TARGET}",
        data=b'{"alice": true}',
        headers={"Upstash-Delay": "1h", "Upstash-Label": label},
    )
    assert reply.status in (200, 201), (reply.status, reply.body)
    world.mark(reply.body["messageId"], label)
    return str(reply.body["messageId"])


async def a_schedule(world: World) -> str:
    label = unique("alice-schedule")
    reply = await world.alice.call(
        "POST",
        f"/v2/schedules/{CLOSED_TARGET}",
        data=b"{}",
        headers={"Upstash-Cron": "*/5 * * * *", "Upstash-Label": label},
    )
    assert reply.status in (200, 201), (reply.status, reply.body)
    world.mark(reply.body["scheduleId"], label)
    return str(reply.body["scheduleId"])


async def a_dead_letter(world: World) -> str:
    """A's /v2 message that failed for good (the dead letter migration 022 writes)."""
    message_id = await a_message(world)

    async def fail(conn: Any) -> Any:
        execution = await conn.fetchval(
            "update executions set status = 'failed', started_at = now(), finished_at = now(),"
            " error_message = 'connection refused' where task_id = $1 returning id",
            UUID(message_id),
        )
        return await conn.fetchval("select id from dead_letters where execution_id = $1", execution)

    found = await world.store._run(fail)
    assert found is not None
    world.mark(found)
    return str(found)


async def a_queue(world: World) -> str:
    """A queue of A's holding A's pending message."""
    name = unique("alice-queue")
    reply = await world.alice.call(
        "POST", f"/v2/enqueue/{name}/{CLOSED_TARGET}", data=b"{}", headers={"Upstash-Delay": "1h"}
    )
    assert reply.status in (200, 201), (reply.status, reply.body)
    world.mark(reply.body["messageId"], name)
    return name


async def a_destination(world: World) -> str:
    return CLOSED_TARGET


FACTORIES: dict[str, Callable[[World], Awaitable[str]]] = {
    "message_id": a_message,
    "schedule_id": a_schedule,
    "dlq_id": a_dead_letter,
}
# Values inside the caller's own namespace: B's call acts on B's own queue / destination.
NAMED_BY_CALLER: dict[str, Callable[[World], Awaitable[str]]] = {
    "name": a_queue,
    "queue": a_queue,
    "target": a_destination,
}


def v2_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [(m, p, op) for m, p, op in operations(spec) if p.startswith(V2)]
    assert found, "no /v2 operation in the spec"
    return found


def example_body(operation: dict[str, Any]) -> bytes | None:
    media = operation.get("requestBody", {}).get("content", {})
    for content in media.values():
        if "example" in content:
            example = content["example"]
            return example.encode() if isinstance(example, str) else _json(example)
    return b"{}" if media else None


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


async def test_every_v2_path_parameter_has_a_factory(spec: dict[str, Any]) -> None:
    for method, path, operation in v2_operations(spec):
        missing = [
            n for n in path_parameters(operation) if n not in FACTORIES and n not in NAMED_BY_CALLER
        ]
        assert not missing, f"{method} {path}: add a factory for {missing}"


async def test_another_orgs_v2_ids_are_not_found_and_untouched(
    spec: dict[str, Any], world: World
) -> None:
    checked = []
    for method, path, operation in v2_operations(spec):
        names = path_parameters(operation)
        if not names:
            continue
        values = {}
        for name in names:
            factory = FACTORIES.get(name) or NAMED_BY_CALLER[name]
            values[name] = await factory(world)
        target = path.format_map(values)
        body = example_body(operation)
        before = await snapshot(world.store, world.alice_org)
        reply = await world.bob.call(method, target, data=body)
        if any(n in FACTORIES for n in names):
            assert reply.status == 404, (method, target, reply.status, reply.body)
            assert isinstance(reply.body, dict) and isinstance(reply.body.get("error"), str), (
                reply.body
            )
        else:
            assert reply.status < 500, (method, target, reply.status, reply.body)
        assert not world.leaked(reply, {str(v) for v in values.values()}), (
            method,
            target,
            reply.text,
        )
        assert await snapshot(world.store, world.alice_org) == before, (method, target)
        if any(n in FACTORIES for n in names):
            own = await world.alice.call(method, target, data=body)
            assert own.status != 404 and own.status < 500, (method, target, own.status, own.body)
        checked.append(f"{method} {path}")
    assert {
        "GET /v2/messages/{message_id}",
        "DELETE /v2/messages/{message_id}",
        "GET /v2/schedules/{schedule_id}",
        "DELETE /v2/dlq/{dlq_id}",
    } <= set(checked), checked


async def test_v2_lists_never_show_another_orgs_resources(
    spec: dict[str, Any], world: World
) -> None:
    for factory in (*FACTORIES.values(), a_queue):
        await factory(world)
    lists = [
        path
        for method, path, operation in v2_operations(spec)
        if method == "GET" and not path_parameters(operation)
    ]
    assert {"/v2/schedules", "/v2/queues", "/v2/dlq"} <= set(lists), lists
    for path in lists:
        own = await world.alice.call("GET", path)
        assert own.status == 200, (path, own.body)
        other = await world.bob.call("GET", path)
        assert other.status == 200, (path, other.body)
        assert not world.leaked(other), (path, world.leaked(other))
        if path != "/v2/keys":
            assert world.leaked(own), f"GET {path}: A's list shows none of A's resources"
