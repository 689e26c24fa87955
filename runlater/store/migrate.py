"""Numbered ``.sql`` migrations, applied in one transaction under an advisory lock.

Several nodes may start at once: the transaction-scoped advisory lock serialises them, and the
second one finds every migration already recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from runlater.store import bridge

_FILE = re.compile(r"^(\d{3})_(\w+)\.sql$")
_LOCK_KEY = 7_141_001  # arbitrary, constant: "runlater migrations"
# A migration may rewrite a large table: no statement limit. It may wait for locks that
# running nodes hold, but not for ever (it is retried; meanwhile nothing queues behind it
# for longer than this).
MIGRATION_LOCK_TIMEOUT = "60s"
MIGRATION_DEADLINE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("runlater.store").joinpath("migrations").iterdir():
        if match := _FILE.match(entry.name):
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers: {versions}")
    return found


async def apply_migrations(conn: asyncpg.Connection) -> list[int]:
    """Unit of work: apply what is missing; returns the versions applied now."""
    applied_now: list[int] = []
    async with bridge.transaction(conn):
        await conn.execute("set local statement_timeout = 0")
        await conn.execute(f"set local lock_timeout = '{MIGRATION_LOCK_TIMEOUT}'")
        await conn.execute("select pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "create table if not exists schema_migrations ("
            " version integer primary key, name text not null,"
            " applied_at timestamptz not null default now())"
        )
        done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
        for migration in available():
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "insert into schema_migrations (version, name) values ($1, $2)",
                migration.version,
                migration.name,
            )
            applied_now.append(migration.version)
    return applied_now
