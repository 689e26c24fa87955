"""An Idempotency-Key held "in progress" by another request, the way the API takes one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import trio

from runlater.store.base import fetchval
from runlater.store.postgres import Store
from runlater.store.transaction import IdempotencyKey
from runlater.web.idempotency import request_hash


@asynccontextmanager
async def key_in_progress(
    store: Store, org_id: UUID, key: str, method: str, path: str, body: bytes
) -> AsyncIterator[None]:
    """While inside, a request transaction (of a task of its own, as another request's would
    be) holds ``key``: it has begun and taken the key, and has not ended."""
    taken, release = trio.Event(), trio.Event()

    async def hold() -> None:
        tx = store.request_transaction(
            IdempotencyKey(org_id, key, method, path, request_hash(method, path, body))
        )
        try:
            await tx.run(fetchval, "select 1")  # the first call begins it and takes the key
            taken.set()
            await release.wait()
        finally:
            await tx.rollback()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold)
        await taken.wait()
        try:
            yield
        finally:
            release.set()
