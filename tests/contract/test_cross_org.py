"""Organization isolation, generated from the spec (docs/api.md: another organization's
resources answer ``404 not_found``, never 403, never a leak through lists).

For every operation of ``/api/v1/openapi.json`` (none is listed by hand):

* with a resource in its path: the resource is made in organization A (by the factory for that
  path parameter's name), organization B calls the operation on it → 404 ``not_found``, A's
  data is unchanged, and A's own call is not a 404 (so the id was a real one);
* a list (a GET answering ``data: [...]``): B's answer holds none of A's ids and names, while
  A's own answer does;
* with query parameters: B passing A's ids and names in each of them gets nothing of A's back
  and changes nothing of A's (e.g. ``DELETE /tasks?queue=<A's queue>`` cancels none of A's).

A path parameter without a factory fails the test: a new route cannot escape it unnoticed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from runlater.store.inbound import InboundRequest
from runlater.store.monitors import Ping
from runlater.store.postgres import Store
from tests.contract.conftest import Client, Reply
from tests.contract.spec_tools import api_operations, resolve
from tests.helpers.process import free_port

# Where A's tasks point: a local port nothing listens on (they are never delivered here).
CLOSED_TARGET = f"http://127.0.0.1:{free_port()}/never"
# Columns that change by themselves when a key is merely used, not when data is changed.
VOLATILE_COLUMNS = ("last_used_at",)


@dataclass
class World:
    """Organizations A (``alice``) and B (``bob``), and what identifies A's resources."""

    alice: Client
    bob: Client
    store: Store
    marks: set[str] = field(default_factory=set)

    @property
    def alice_org(self) -> UUID:
        """A's organization id (the ``alice`` fixture always sets it)."""
        assert self.alice.org_id is not None
        return self.alice.org_id

    def mark(self, *values: Any) -> None:
        self.marks.update(str(v) for v in values if v)

    def leaked(self, reply: Reply, sent: AbstractSet[str] = frozenset()) -> set[str]:
        """A's ids and names in ``reply`` (except values the caller sent itself)."""
        return {m for m in self.marks - sent if m in reply.text}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def ok(reply: Reply, *statuses: int) -> dict[str, Any]:
    assert reply.status in statuses, (reply.status, reply.body)
    return reply.body["data"]


# --------------------------------------------------------------- A's resources, by path parameter


async def a_cron_task(world: World) -> str:
    name, queue = unique("alice-task"), unique("alice-queue")
    task = await ok(
        await world.alice.call(
            "POST",
            "/tasks",
            json_body={"url": CLOSED_TARGET, "cron": "*/5 * * * *", "name": name, "queue": queue},
        ),
        201,
    )
    world.mark(task["id"], name, queue)
    return task["id"]


async def a_queue(world: World) -> str:
    """A queue of A's with a pending execution in it (a once task due in an hour)."""
    name, queue = unique("alice-once"), unique("alice-queue")
    queued = await ok(
        await world.alice.call(
            "POST",
            "/tasks",
            json_body={"url": CLOSED_TARGET, "delay": "1h", "name": name, "queue": queue},
        ),
        202,
    )
    world.mark(queued["task_id"], queued["execution_id"], name, queue)
    return queue


async def a_failed_execution(world: World) -> str:
    """A's execution that failed: one a retry would act on."""
    name = unique("alice-failing")
    queued = await ok(
        await world.alice.call(
            "POST", "/tasks", json_body={"url": CLOSED_TARGET, "name": name, "retry_attempts": 0}
        ),
        202,
    )
    execution_id = queued["execution_id"]
    await world.store._run(
        lambda conn: conn.execute(
            "update executions set status = 'failed', started_at = now(), finished_at = now(),"
            " error_message = 'connection refused' where id = $1",
            UUID(execution_id),
        )
    )
    world.mark(queued["task_id"], execution_id, name)
    return execution_id


async def a_dead_letter(world: World) -> str:
    """A's dead letter: the letter of a failed execution (migration 022 writes it)."""
    execution_id = await a_failed_execution(world)
    found = await world.store._run(
        lambda conn: conn.fetchval(
            "select id from dead_letters where execution_id = $1", UUID(execution_id)
        )
    )
    world.mark(found)
    return str(found)


async def an_api_key(world: World) -> str:
    name = unique("alice-key")
    key = await ok(await world.alice.call("POST", "/api-keys", json_body={"name": name}), 201)
    world.mark(key["id"], key["key_id"], name)
    return key["id"]


async def a_monitor(world: World) -> str:
    """A's heartbeat monitor that has been pinged once (so it has a ping to list)."""
    name = unique("alice-monitor")
    monitor = await ok(
        await world.alice.call(
            "POST", "/monitors", json_body={"name": name, "interval_seconds": 3600}
        ),
        201,
    )
    await world.store.ping_monitor(
        Ping(
            UUID(monitor["ping_token"]),
            "success",
            None,
            None,
            datetime.now(UTC),
            "GET",
            None,
            None,
            b"",
            False,
        )
    )
    world.mark(monitor["id"], monitor["ping_token"], monitor["badge_token"], name)
    return monitor["id"]


async def a_channel(world: World) -> str:
    """A's notification channel that has sent one test notification (so its log has one)."""
    name = unique("alice-channel")
    channel = await ok(
        await world.alice.call(
            "POST",
            "/notification-channels",
            json_body={"name": name, "type": "email", "target": "alice@example.com"},
        ),
        201,
    )
    await ok(await world.alice.call("POST", f"/notification-channels/{channel['id']}/test"), 202)
    world.mark(channel["id"], name)
    return channel["id"]


async def a_window(world: World) -> str:
    reason = unique("alice-window")
    window = await ok(
        await world.alice.call(
            "POST",
            "/maintenance-windows",
            json_body={"ends_at": "2099-01-01T00:00:00Z", "reason": reason},
        ),
        201,
    )
    world.mark(window["id"], reason)
    return window["id"]


async def an_uptime_check(world: World) -> str:
    name = unique("alice-uptime")
    check = await ok(
        await world.alice.call(
            "POST",
            "/uptime-checks",
            json_body={"name": name, "url": CLOSED_TARGET, "interval_seconds": 60},
        ),
        201,
    )
    world.mark(check["id"], check["badge_token"], name)
    return check["id"]


# The endpoint an_endpoint made last, per world: an event's factory makes the event there (a
# path /endpoints/{endpoint_id}/events/{event_id} names both, endpoint first).
_LAST_ENDPOINT: dict[int, tuple[str, str]] = {}


async def an_endpoint(world: World) -> str:
    """A's inbound endpoint that has received one event (so its events list has one)."""
    name = unique("alice-endpoint")
    endpoint = await ok(
        await world.alice.call(
            "POST", "/endpoints", json_body={"name": name, "forward_urls": [CLOSED_TARGET]}
        ),
        201,
    )
    world.mark(endpoint["id"], endpoint["slug"], name)
    _LAST_ENDPOINT[id(world)] = (endpoint["id"], endpoint["slug"])
    await an_event(world)
    return endpoint["id"]


async def an_event(world: World) -> str:
    """An event received by A's last endpoint (one is made first when there is none)."""
    if id(world) not in _LAST_ENDPOINT:
        await an_endpoint(world)
    _, slug = _LAST_ENDPOINT[id(world)]
    body = unique("alice-event").encode()
    row = await world.store.receive_inbound_event(
        InboundRequest(slug, "POST", "", "", {}, body, True, None, datetime.now(UTC)), None, None
    )
    assert row is not None and row["event_id"] is not None
    world.mark(row["event_id"], body.decode())
    return str(row["event_id"])


# Path parameters that name something within the caller's own organization (not an id): another
# organization's value reaches the caller's own namespace, never the other organization.
NAMED_BY_CALLER = frozenset({"name"})

# Keyed by path parameter name. A new route's parameter needs an entry here.
FACTORIES: dict[str, Callable[[World], Awaitable[str]]] = {
    "task_id": a_cron_task,
    "execution_id": a_failed_execution,
    "dead_letter_id": a_dead_letter,
    "api_key_id": an_api_key,
    "name": a_queue,  # /queues/{name}/...
    "monitor_id": a_monitor,
    "channel_id": a_channel,
    "window_id": a_window,
    "check_id": an_uptime_check,
    "endpoint_id": an_endpoint,
    "event_id": an_event,
}


# ------------------------------------------------------------------------------------ helpers


async def snapshot(store: Store, org_id: UUID) -> dict[str, list[str]]:
    """Every row of A: the organization, and each table with an ``organization_id``."""

    async def read(conn: Any) -> dict[str, list[str]]:
        tables = await conn.fetch(
            "select table_name from information_schema.columns"
            " where table_schema = 'public' and column_name = 'organization_id'"
            " and table_name in (select table_name from information_schema.tables"
            "                    where table_schema = 'public' and table_type = 'BASE TABLE')"
            " order by 1"
        )
        drop = "".join(f" - '{c}'" for c in VOLATILE_COLUMNS)
        rows = {
            "organizations": await conn.fetch(
                f"select (to_jsonb(t){drop})::text from organizations t where id = $1", org_id
            )
        }
        for (table,) in tables:
            rows[table] = await conn.fetch(
                f'select (to_jsonb(t){drop})::text as r from "{table}" t'
                " where organization_id = $1 order by r",
                org_id,
            )
        return {table: [r[0] for r in found] for table, found in rows.items()}

    return await store._run(read)


def request_body(operation: dict[str, Any]) -> Any:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return None if media is None else media["example"]


def query_values(operation: dict[str, Any]) -> dict[str, str]:
    """A valid value for each required query parameter (its example or default)."""
    values = {}
    for parameter in operation.get("parameters", ()):
        if parameter["in"] == "query" and parameter.get("required"):
            example = parameter.get("example", parameter["schema"].get("default", "x"))
            values[parameter["name"]] = str(example)
    return values


def path_parameters(operation: dict[str, Any]) -> list[str]:
    return [p["name"] for p in operation.get("parameters", ()) if p["in"] == "path"]


def is_list(spec: dict[str, Any], method: str, operation: dict[str, Any]) -> bool:
    if method != "GET" or "200" not in operation["responses"]:
        return False
    schema = resolve(spec, operation["responses"]["200"]["content"]["application/json"]["schema"])
    data = resolve(spec, schema.get("properties", {}).get("data", {}))
    return data.get("type") == "array"


@pytest.fixture
async def world(alice: Client, bob: Client, store: Store) -> World:
    world = World(alice, bob, store)
    world.mark(alice.org_id)
    return world


# -------------------------------------------------------------------------------------- tests


async def test_every_path_parameter_has_a_factory(spec: dict[str, Any]) -> None:
    for method, path, operation in api_operations(spec):
        missing = [name for name in path_parameters(operation) if name not in FACTORIES]
        assert not missing, (
            f"{method} {path}: add a factory for path parameter(s) {missing} to FACTORIES in "
            "tests/contract/test_cross_org.py"
        )


async def test_another_orgs_resource_in_the_path_is_not_found_and_untouched(
    spec: dict[str, Any], world: World
) -> None:
    checked = []
    for method, path, operation in api_operations(spec):
        names = path_parameters(operation)
        if not names:
            continue
        assert all(n in FACTORIES for n in names), f"{method} {path}: add a factory for {names}"
        values = {name: await FACTORIES[name](world) for name in names}
        target = path.format_map(values)
        call = {"json_body": request_body(operation), "query": query_values(operation)}
        before = await snapshot(world.store, world.alice_org)
        reply = await world.bob.call(method, target, **call)
        if set(names) <= NAMED_BY_CALLER:
            # A queue is a name within an organization: B pausing "A's" name pauses B's own
            # queue of that name, and answers only what B sent and B's state.
            assert reply.status == 200, (method, target, reply.status, reply.body)
            assert reply.body == {
                "data": {"name": values["name"], "paused": path.endswith("/pause")}
            }
        else:
            assert reply.status == 404, (method, target, reply.status, reply.body)
            assert reply.body["error"]["code"] == "not_found", reply.body
            assert not world.leaked(reply), (method, target, reply.text)
        assert await snapshot(world.store, world.alice_org) == before, (method, target)
        own = await world.alice.call(method, target, **call)
        assert own.status != 404 and own.status < 500, (method, target, own.status, own.body)
        checked.append(f"{method} {path}")
    assert {"GET /api/v1/tasks/{task_id}", "DELETE /api/v1/api-keys/{api_key_id}"} <= set(
        checked
    ), checked


async def test_lists_never_show_another_orgs_resources(spec: dict[str, Any], world: World) -> None:
    for factory in FACTORIES.values():
        await factory(world)
    lists = [
        (path, operation)
        for method, path, operation in api_operations(spec)
        if not path_parameters(operation) and is_list(spec, method, operation)
    ]
    assert "/api/v1/tasks" in [path for path, _ in lists], lists
    for path, operation in lists:
        query = {**query_values(operation), "limit": "100"}
        own = await world.alice.call("GET", path, query=query)
        assert own.status == 200, (path, own.body)
        assert world.leaked(own), f"GET {path}: A's list shows none of A's resources"
        other = await world.bob.call("GET", path, query=query)
        assert other.status == 200, (path, other.body)
        assert not world.leaked(other), (path, world.leaked(other))


async def test_another_orgs_ids_and_names_in_query_parameters_reach_nothing(
    spec: dict[str, Any], world: World
) -> None:
    for factory in FACTORIES.values():
        await factory(world)
    values = sorted(world.marks - {str(world.alice_org)})
    before = await snapshot(world.store, world.alice_org)
    # There is something to cancel: A's queue holds a pending execution.
    assert any('"status": "pending"' in row for row in before["executions"]), before
    tried = 0
    for method, path, operation in api_operations(spec):
        if path_parameters(operation):
            continue  # covered with A's ids in the path
        parameters = [p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"]
        for parameter in parameters:
            for value in values:
                query = {**query_values(operation), parameter: value}
                reply = await world.bob.call(
                    method, path, json_body=request_body(operation), query=query
                )
                assert reply.status < 500, (method, path, query, reply.body)
                assert not world.leaked(reply, sent={value}), (method, path, query, reply.text)
                tried += 1
    assert tried, "no operation with query parameters"
    assert await snapshot(world.store, world.alice_org) == before


async def test_another_orgs_idempotency_key_replays_nothing_of_it(
    spec: dict[str, Any], world: World
) -> None:
    """Idempotency keys are per organization: B reusing A's key (same route, same body) acts
    for B and is not answered with A's stored response."""
    operation = spec["paths"]["/api/v1/tasks"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in operation["parameters"]]
    body = {"url": CLOSED_TARGET, "delay": "1h", "name": unique("alice-idem")}
    headers = {"Idempotency-Key": unique("shared")}
    first = await ok(await world.alice.call("POST", "/tasks", json_body=body, headers=headers), 202)
    world.mark(first["task_id"], first["execution_id"])
    before = await snapshot(world.store, world.alice_org)
    reply = await world.bob.call("POST", "/tasks", json_body=body, headers=headers)
    assert reply.status == 202, reply.body
    assert not world.leaked(reply, sent={body["name"]}), reply.text
    assert await snapshot(world.store, world.alice_org) == before
