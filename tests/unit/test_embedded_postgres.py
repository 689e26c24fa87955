"""Tests for runlater.store.embedded against real PostgreSQL server binaries (no mocks)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from runlater.errors import EmbeddedPostgresError, PostgresNotFound
from runlater.store.embedded import (
    EmbeddedPostgres,
    create_throwaway_cluster,
    default_data_dir,
    find_bindir,
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedPostgres]:
    pg = create_throwaway_cluster()
    try:
        yield pg
    finally:
        pg.destroy()


def fetch(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_row_survives_restart_on_same_port(cluster: EmbeddedPostgres) -> None:
    fetch(cluster.dsn, "CREATE TABLE survivor (id int PRIMARY KEY, note text)")
    fetch(cluster.dsn, "INSERT INTO survivor VALUES (1, 'still here')")
    port, dsn = cluster.port, cluster.dsn
    cluster.stop()
    assert cluster.server_pid() is None
    with pytest.raises((OSError, asyncpg.PostgresError)):
        fetch(dsn, "SELECT 1")
    assert cluster.start() == dsn
    assert cluster.owned and cluster.port == port
    assert [tuple(r) for r in fetch(cluster.dsn, "SELECT id, note FROM survivor")] == [
        (1, "still here")
    ]


def test_second_instance_reuses_running_server(cluster: EmbeddedPostgres) -> None:
    pid = cluster.server_pid()
    second = EmbeddedPostgres(cluster.data_dir)
    assert second.start() == cluster.dsn
    assert second.owned is False
    assert second.port == cluster.port
    second.stop()
    assert cluster.server_pid() == pid
    assert fetch(cluster.dsn, "SELECT 42 AS x")[0]["x"] == 42


def test_server_runs_as_expected_os_user(cluster: EmbeddedPostgres) -> None:
    pid = cluster.server_pid()
    assert pid is not None
    uid = os.stat(f"/proc/{pid}").st_uid
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == expected
    assert (cluster.data_dir / "pg.log").stat().st_uid == expected


def test_password_auth_is_enforced(cluster: EmbeddedPostgres) -> None:
    password_file = cluster.data_dir / "pg-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() in cluster.dsn
    parts = urlsplit(cluster.dsn)
    wrong = urlunsplit(parts._replace(netloc=f"runlater:wrong@{parts.hostname}:{parts.port}"))
    with pytest.raises(asyncpg.InvalidPasswordError):
        fetch(wrong, "SELECT 1")
    hba = (cluster.pg_dir / "pg_hba.conf").read_text()
    assert "trust" not in [line.split()[-1] for line in hba.splitlines() if line[:1].isalpha()]


def test_find_bindir_without_search_path_fails_with_one_line() -> None:
    with pytest.raises(PostgresNotFound) as info:
        find_bindir(search_path="")
    message = str(info.value)
    assert "\n" not in message
    assert "not found" in message and "RUNLATER_DATABASE_URL" in message


def test_find_bindir_finds_server_binaries() -> None:
    bindir = find_bindir()
    assert all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))
    assert default_data_dir().name == "runlater"


def test_data_dir_that_cannot_be_created_is_a_clear_error() -> None:
    with tempfile.NamedTemporaryFile() as not_a_dir:
        data_dir = Path(not_a_dir.name) / "data"
        with pytest.raises(EmbeddedPostgresError) as info:
            EmbeddedPostgres(data_dir).start()
    assert str(data_dir) in str(info.value)
    assert "\n" not in str(info.value)


def test_data_dir_unreachable_for_the_server_is_a_clear_error() -> None:
    parent = Path(tempfile.mkdtemp())  # 0700, owned by us
    try:
        if os.geteuid() == 0:
            data_dir = parent / "data"  # the postgres user cannot traverse `parent`
        else:
            data_dir = parent
            parent.chmod(0o500)  # not writable
        with pytest.raises(EmbeddedPostgresError) as info:
            EmbeddedPostgres(data_dir).start()
        assert str(data_dir) in str(info.value)
        assert "\n" not in str(info.value)
        assert not (data_dir / "pg" / "PG_VERSION").exists()
    finally:
        parent.chmod(0o700)
        shutil.rmtree(parent)


def test_a_throwaway_cluster_is_durable_unless_asked_to_be_ephemeral(
    cluster: EmbeddedPostgres, pg_server_dsn: str
) -> None:
    """The benchmarks' clusters keep the settings users run; the suite's own trades only
    durability across an OS crash (fsync, full-page images), never an acknowledged commit."""

    def settings(dsn: str) -> dict[str, str]:
        rows = fetch(
            dsn,
            "select name, setting from pg_settings"
            " where name in ('fsync', 'full_page_writes', 'synchronous_commit')",
        )
        return {r["name"]: r["setting"] for r in rows}

    assert settings(cluster.dsn) == {
        "fsync": "on",
        "full_page_writes": "on",
        "synchronous_commit": "on",
    }
    if not os.environ.get("RUNLATER_TEST_DATABASE_URL"):  # the suite's own cluster
        assert settings(pg_server_dsn) == {
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "on",
        }
