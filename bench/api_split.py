"""Where the CPU of one ``POST /api/v1/tasks`` goes, measured in one process without a server.

``python -m bench.api_split --dsn DSN`` (a migrated, bootstrapped database) prints one JSON
line of CPU µs per call (process CPU time, best of 3 batches, calls one after another):

- ``crossing_select1``: ``SELECT 1`` through ``runlater.store.bridge.run`` (trio → trio-asyncio →
  asyncpg): the fixed cost of one unit of work (compare ``bench.asyncpg_loop``: the same on plain
  asyncio);
- ``app_bare_quart``: a bare quart-trio route (bench.bare_api) called as an ASGI app;
- ``app_runlater_no_db``: runlater's app (hooks, validation, SSRF check, handler, audit) with
  a store that answers from memory;
- ``app_runlater``: runlater's app on the real store (calls one at a time, so each has its own
  insert and its own audit insert: two units of work).

Differences give the split: runlater's Python = no_db - bare_quart, its database work =
app_runlater - no_db. (hypercorn's share comes from the served baselines in bench/api.py.)
"""

from __future__ import annotations

import argparse
import json
import resource
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import trio
import trio_asyncio

from bench.api_load import DEFAULT_BODY
from bench.bare_api import quart_app
from runlater import apikeys
from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store import bridge
from runlater.store.base import fetchval
from runlater.store.postgres import Store
from runlater.store.records import ApiKeyOwner
from runlater.web.app import create_app

BODY = DEFAULT_BODY.encode()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def per_call_us(call: Callable[[], Awaitable[Any]], n: int, warmup: int = 300) -> float:
    for _ in range(warmup):
        await call()
    best = float("inf")
    for _ in range(3):
        started = cpu_s()
        for _ in range(n):
            await call()
        best = min(best, (cpu_s() - started) / n * 1e6)
    return round(best, 1)


async def asgi_post(app: Any, key: str) -> int:
    """One ``POST /api/v1/tasks`` into ``app`` as hypercorn would call it; the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/tasks",
        "raw_path": b"/api/v1/tasks",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


class MemoryStore:
    """Answers the three calls a task creation makes, without a database."""

    def __init__(self, owner: ApiKeyOwner) -> None:
        self.owner = owner

    async def authenticate_api_key(self, key_id: str, secret_hash: str) -> ApiKeyOwner:
        return self.owner

    async def insert_task(self, org_id: Any, row: dict[str, Any], delay_s: Any) -> dict:
        return {
            **row,
            "id": uuid.uuid4(),
            "execution_id": uuid.uuid4(),
            "execution_scheduled_for": datetime.now(UTC),
        }

    def request_transaction(self, key: Any = None) -> _NoTransaction:
        return _NoTransaction(key)


class _NoTransaction:
    """The request transaction's interface (runlater/store/transaction.py), doing nothing."""

    def __init__(self, key: Any) -> None:
        self.key = key
        self.ended = False

    async def commit(self, **_: Any) -> None:
        self.ended = True

    async def rollback(self) -> None:
        self.ended = True


async def _trio_side(dsn: str, key: str, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    async with trio_asyncio.open_loop():
        store = await Store.open(dsn, pool_size=4)
        try:
            out["crossing_select1"] = await per_call_us(
                lambda: bridge.run(store._pool, fetchval, "select 1"), n
            )
            owner = await store.authenticate_api_key(*_key_parts(key))
            assert owner is not None
            settings = Settings(
                allow_private_targets=True, rate_limit_per_key=0, rate_limit_per_ip=0
            )
            apps = {
                "app_bare_quart": quart_app(),
                "app_runlater_no_db": create_app(MemoryStore(owner), settings, SystemClock()),
                "app_runlater": create_app(store, settings, SystemClock()),
            }
            for name, app in apps.items():
                if await asgi_post(app, key) not in (200, 202):
                    raise RuntimeError(f"{name}: POST /api/v1/tasks did not succeed")
                out[name] = await per_call_us(lambda app=app: asgi_post(app, key), n)
        finally:
            await store.close()
    return out


def _key_parts(key: str) -> tuple[str, str]:
    parts = apikeys.split(key)
    assert parts is not None
    return parts[0], apikeys.hash_secret(parts[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--key", required=True, help="an API key of the database's org")
    parser.add_argument("--n", type=int, default=1000, help="calls per batch (3 batches)")
    args = parser.parse_args()
    result = trio.run(_trio_side, args.dsn, args.key, args.n)
    result["runlater_python"] = round(result["app_runlater_no_db"] - result["app_bare_quart"], 1)
    result["runlater_database"] = round(result["app_runlater"] - result["app_runlater_no_db"], 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
