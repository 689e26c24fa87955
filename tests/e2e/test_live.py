"""Live events over websockets against a real ``runlater serve`` (docs/api.md, "Live events"):
the hello frame, events after their commit, the ``?types=`` filter, organization isolation,
credentials, the Origin check, overflow, and events of work another node did."""

from __future__ import annotations

import base64
import json
import os
import socket
from functools import partial
from typing import Any
from uuid import UUID

import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

from runlater import apikeys
from runlater.domain.people import new_token
from runlater.store.postgres import Store
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import once_task
from tests.helpers.process import Serve, api, base_env, bootstrap, free_port
from tests.helpers.sink import serve_sink

pytestmark = pytest.mark.slow
WAIT_S = 15


def ws_url(node: Serve, path: str) -> str:
    return node.url.replace("http://", "ws://") + path


async def next_frame(ws: WebSocketConnection, timeout_s: float = WAIT_S) -> dict[str, Any]:
    with trio.fail_after(timeout_s):
        found: dict[str, Any] = json.loads(await ws.get_message())
        return found


async def frames_until(
    ws: WebSocketConnection, done: Any, timeout_s: float = WAIT_S
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    with trio.fail_after(timeout_s):
        while not done(seen):
            seen.append(json.loads(await ws.get_message()))
    return seen


def bearer(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", f"Bearer {key}".encode())]


@pytest.fixture
def node(database_url: str) -> Any:
    port = free_port()
    env = base_env(
        RUNLATER_DATABASE_URL=database_url,
        RUNLATER_BASE_URL=f"http://127.0.0.1:{port}",
        RUNLATER_LIVE_MAX_PER_ORG="3",
    )
    serve = Serve(env, port=port).start()
    try:
        yield serve, env
    finally:
        serve.stop()


async def test_a_program_sees_its_tasks_and_executions_live_and_nothing_of_another_org(
    node: Any,
) -> None:
    serve, env = node
    key_a = bootstrap(env, "Acme")
    key_b = bootstrap(env, "Globex")
    async with (
        serve_sink() as sink,
        open_websocket_url(ws_url(serve, "/api/v1/live"), extra_headers=bearer(key_a)) as a,
        open_websocket_url(
            ws_url(serve, "/api/v1/live?types=task.created"), extra_headers=bearer(key_b)
        ) as b,
    ):
        hello = await next_frame(a)
        assert hello["type"] == "hello" and UUID(hello["org_id"])
        assert (await next_frame(b))["type"] == "hello"
        created = await trio.to_thread.run_sync(
            lambda: api(serve, key_a, "POST", "/tasks", json={"url": f"{sink.url}/a"})
        )
        assert created.status_code == 202, created.text
        task_id = created.json()["data"]["task_id"]
        seen = await frames_until(
            a,
            lambda fs: any(
                f["type"] == "execution.finished" and f["data"]["task_id"] == task_id for f in fs
            ),
        )
        types = [f["type"] for f in seen]
        assert types.index("task.created") < types.index("execution.started")
        assert types.index("execution.started") < types.index("execution.finished")
        finished = next(f for f in seen if f["type"] == "execution.finished")
        assert finished["data"]["status"] == "success" and finished["data"]["status_code"] == 200
        assert set(finished["data"]) == {
            "execution_id",
            "task_id",
            "status",
            "status_code",
            "duration_ms",
            "attempt",
            "scheduled_for",
            "finished_at",
            "queue",
        }
        ids = [int(f["id"]) for f in seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)  # increasing
        task = next(f for f in seen if f["type"] == "task.created")
        assert task["data"]["id"] == task_id and task["data"]["url"] == f"{sink.url}/a"
        # Globex heard nothing of Acme; its own task (and only task.created) arrives.
        await trio.to_thread.run_sync(
            lambda: api(serve, key_b, "POST", "/tasks", json={"url": f"{sink.url}/b"})
        )
        theirs = await next_frame(b)
        assert theirs["type"] == "task.created" and theirs["data"]["url"] == f"{sink.url}/b"


async def test_credentials_are_required_and_a_revoked_key_is_closed(node: Any) -> None:
    serve, env = node
    key = bootstrap(env, "Acme")
    no_key: list[tuple[bytes, bytes]] = []
    for headers in (no_key, bearer("pk_live_x.sk_live_y"), bearer(apikeys.generate().full)):
        with pytest.raises(HandshakeError) as refused:
            async with open_websocket_url(ws_url(serve, "/api/v1/live"), extra_headers=headers):
                pass
        assert getattr(refused.value, "status_code", 401) == 401
    with pytest.raises(HandshakeError):  # an unknown event type
        async with open_websocket_url(
            ws_url(serve, "/api/v1/live?types=nope"), extra_headers=bearer(key)
        ):
            pass
    second = await trio.to_thread.run_sync(
        lambda: api(serve, key, "POST", "/api-keys", json={"name": "to revoke"})
    )
    doomed = second.json()["data"]
    async with open_websocket_url(
        ws_url(serve, "/api/v1/live"), extra_headers=bearer(doomed["key"])
    ) as ws:
        assert (await next_frame(ws))["type"] == "hello"
        revoked = await trio.to_thread.run_sync(
            lambda: api(serve, key, "DELETE", f"/api-keys/{doomed['id']}")
        )
        assert revoked.status_code == 204
        with trio.fail_after(WAIT_S), pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.get_message()
        assert closed.value.reason is not None and closed.value.reason.code == 1008


async def test_the_connection_limit_per_organization_refuses_with_a_reason(node: Any) -> None:
    serve, env = node
    key = bootstrap(env, "Acme")
    url = ws_url(serve, "/api/v1/live")
    async with (
        open_websocket_url(url, extra_headers=bearer(key)) as w1,
        open_websocket_url(url, extra_headers=bearer(key)) as w2,
        open_websocket_url(url, extra_headers=bearer(key)) as w3,
    ):
        for ws in (w1, w2, w3):
            assert (await next_frame(ws))["type"] == "hello"
        with pytest.raises(HandshakeError) as refused:
            async with open_websocket_url(url, extra_headers=bearer(key)):
                pass
        body = getattr(refused.value, "body", b"") or b""
        assert getattr(refused.value, "status_code", None) == 429
        assert b"RUNLATER_LIVE_MAX_PER_ORG" in body


async def test_the_pages_socket_checks_origin_and_session(node: Any, store: Store) -> None:
    serve, env = node
    bootstrap(env, "Acme")
    link, session = new_token(), new_token()
    assert await store.issue_login_token("owner@acme.test", link[1], 900)
    assert await store.sign_in(link[1], session[1], "c" * 43, 3600) is not None
    cookie = (b"Cookie", f"runlater_session={session[0]}".encode())
    for headers in (
        [(b"Origin", b"https://evil.example"), cookie],  # a foreign page
        [(b"Origin", serve.url.encode())],  # no session
        [cookie],  # no Origin: not a browser page
    ):
        with pytest.raises(HandshakeError) as refused:
            async with open_websocket_url(ws_url(serve, "/live"), extra_headers=headers):
                pass
        assert getattr(refused.value, "status_code", None) in (401, 403)
    async with open_websocket_url(
        ws_url(serve, "/live"), extra_headers=[(b"Origin", serve.url.encode()), cookie]
    ) as ws:
        hello = await next_frame(ws)
        assert hello["type"] == "hello"


async def test_events_of_work_another_node_did_reach_this_nodes_clients(
    node: Any, database_url: str, store: Store
) -> None:
    """Node B is another database session here: it takes an execution (status running, its
    lease) and records the outcome, as a node's pool does. Its commits reach node A's clients
    through Postgres's NOTIFY and node A's Listener. The execution is due in an hour, so node
    A's own pool never touches it."""
    serve, env = node
    key = bootstrap(env, "Acme")
    org = await trio.to_thread.run_sync(lambda: api(serve, key, "GET", "/org"))
    org_id = UUID(org.json()["data"]["id"])
    row = await store.insert_task(org_id, once_task("http://127.0.0.1:9/x"), 3600)
    execution = row["execution_id"]
    async with open_websocket_url(
        ws_url(serve, "/api/v1/live?types=execution.started,execution.finished"),
        extra_headers=bearer(key),
    ) as ws:
        assert (await next_frame(ws))["type"] == "hello"
        async with raw_connection(database_url) as b:
            await sql(
                b,
                "update executions set status = 'running', started_at = now(),"
                " lease_token = gen_random_uuid(), lease_expires_at = now() + interval '1 hour',"
                " leased_by = 'node-b' where id = $1",
                execution,
            )
            started = await next_frame(ws)
            assert started["type"] == "execution.started"
            assert started["data"]["execution_id"] == str(execution)
            await sql(
                b,
                "update executions set status = 'success', status_code = 200, duration_ms = 7,"
                " finished_at = now(), lease_token = null, lease_expires_at = null"
                " where id = $1",
                execution,
            )
        finished = await next_frame(ws)
        assert finished["type"] == "execution.finished"
        assert finished["data"]["execution_id"] == str(execution)
        assert finished["data"]["status"] == "success" and finished["data"]["duration_ms"] == 7


async def test_a_client_on_one_node_receives_the_executions_another_real_node_ran(
    aio_loop: object, database_url: str
) -> None:
    """Two ``runlater serve`` processes on one database. Node A has one worker and node B 50,
    and the target answers after 300 ms, so B runs most of the 20 executions; the client on
    A hears every one of them finish, whichever node ran it (``leased_by`` says which)."""
    ports = [free_port(), free_port()]
    nodes = [
        Serve(
            base_env(
                RUNLATER_DATABASE_URL=database_url,
                RUNLATER_BASE_URL=f"http://127.0.0.1:{port}",
                RUNLATER_NODE_NAME=name,
                RUNLATER_MIN_WORKERS="1",
                RUNLATER_MAX_WORKERS=workers,
            ),
            port=port,
        ).start()
        for port, name, workers in zip(ports, ["node-a", "node-b"], ["1", "50"], strict=True)
    ]
    try:
        a, _ = nodes
        key = bootstrap(a.env, "Acme")
        async with (
            serve_sink() as sink,
            open_websocket_url(
                ws_url(a, "/api/v1/live?types=execution.finished"), extra_headers=bearer(key)
            ) as ws,
        ):
            assert (await next_frame(ws))["type"] == "hello"
            for i in range(20):
                body = {"url": f"{sink.url}/slow/300", "name": f"t{i}"}
                made = await trio.to_thread.run_sync(
                    partial(api, a, key, "POST", "/tasks", json=body)
                )
                assert made.status_code == 202, made.text
            seen = await frames_until(ws, lambda fs: len(fs) == 20, timeout_s=60)
        async with raw_connection(database_url) as conn:
            ran_by = {
                str(r["id"]): r["leased_by"]
                for r in await sql(conn, "select id, leased_by from executions")
            }
        heard = {f["data"]["execution_id"] for f in seen}
        assert heard == set(ran_by)  # every execution, once
        assert all(f["data"]["status"] == "success" for f in seen)
        assert "node-b" in ran_by.values()  # the other node ran some, and A's client heard them
    finally:
        for serve in nodes:
            serve.stop()


async def test_under_load_each_organization_hears_only_its_own_events(
    node: Any, aio_loop: object, database_url: str
) -> None:
    """Acme runs 300 executions (three queues of 100) while Globex runs 20, on one node: every
    frame either client receives is about its own organization's tasks."""
    serve, env = node
    key_a, key_b = bootstrap(env, "Acme"), bootstrap(env, "Globex")
    async with (
        serve_sink() as sink,
        open_websocket_url(
            ws_url(serve, "/api/v1/live?types=execution.finished"), extra_headers=bearer(key_a)
        ) as a,
        open_websocket_url(ws_url(serve, "/api/v1/live"), extra_headers=bearer(key_b)) as b,
    ):
        assert (await next_frame(a))["type"] == "hello"
        assert (await next_frame(b))["type"] == "hello"
        heard_by_b: list[dict[str, Any]] = []

        async def listen_b() -> None:
            while True:
                heard_by_b.append(json.loads(await b.get_message()))

        def finished(frames: list[dict[str, Any]]) -> int:
            return sum(f["type"] == "execution.finished" for f in frames)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen_b)
            batches = [(key_a, f"a{q}", "/a", 100) for q in range(3)] + [(key_b, "b", "/b", 20)]
            for key, queue, path, count in batches:
                body = {"url": sink.url + path, "queue": queue, "items": [{}] * count}
                made = await trio.to_thread.run_sync(
                    partial(api, serve, key, "POST", "/tasks/batch", json=body)
                )
                assert made.status_code == 201, made.text
            heard_by_a = await frames_until(a, lambda fs: len(fs) == 300, timeout_s=120)
            with trio.fail_after(60):
                while finished(heard_by_b) < 20:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    async with raw_connection(database_url) as conn:
        rows = await sql(
            conn,
            "select t.id, o.name from tasks t join organizations o on o.id = t.organization_id",
        )
    owner = {str(r["id"]): r["name"] for r in rows}

    queue_owner = {"a0": "Acme", "a1": "Acme", "a2": "Acme", "b": "Globex"}

    def owner_of(frame: dict[str, Any]) -> str:
        data = frame["data"]
        if frame["type"] == "queue.changed":
            return queue_owner[data["name"]]
        return owner[str(data["task_id"] if frame["type"].startswith("execution.") else data["id"])]

    assert {owner_of(f) for f in heard_by_a} == {"Acme"}
    assert len({f["data"]["execution_id"] for f in heard_by_a}) == 300
    assert {owner_of(f) for f in heard_by_b} == {"Globex"}
    kinds = {f["type"] for f in heard_by_b}
    assert {"task.created", "execution.started", "queue.changed"} <= kinds
    assert finished(heard_by_b) == 20


def _raw_upgrade(port: int, key: str) -> socket.socket:
    """A websocket upgrade on a socket with a tiny receive buffer, whose frames are never
    read: a client that cannot keep up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(10)
    handshake = (
        f"GET /api/v1/live?types=task.created HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    sock.sendall(handshake.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_client_that_never_reads_is_closed_and_deliveries_go_on(
    node: Any, store: Store
) -> None:
    serve, env = node
    key = bootstrap(env, "Acme")
    slow = await trio.to_thread.run_sync(_raw_upgrade, serve.port, key)
    try:
        async with serve_sink() as sink:
            # Far more frames than the connection's buffer in the hub and the kernel's buffers
            # hold: 12 batches of 1,000 tasks, each a task.created event for the slow client.
            for batch in range(12):
                body = {
                    "url": f"{sink.url}/b",
                    "queue": f"q{batch}",
                    "items": [{"n": i} for i in range(1000)],
                }
                answer = await trio.to_thread.run_sync(
                    partial(api, serve, key, "POST", "/tasks/batch", json=body)
                )
                assert answer.status_code == 201, answer.status_code
            # Every task is still delivered: the engine never waited on the client.
            with trio.fail_after(120):
                while len(sink.requests) < 12_000:
                    await trio.sleep(0.2)
        # The server gave up on the client: reading what it sent ends in a close (or EOF).
        ended = await trio.to_thread.run_sync(_read_to_end, slow)
        assert ended
    finally:
        slow.close()


def _read_to_end(sock: socket.socket) -> bool:
    sock.settimeout(30)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return True  # the server closed the connection
        data += chunk
        if b"\x88" in data[-64:] and b'"overflow"' in data:
            return True  # the overflow frame and a close frame (opcode 0x8)
