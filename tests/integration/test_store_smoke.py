from runlater.store.postgres import Store


async def test_ping_and_migrations_idempotent(store: Store) -> None:
    await store.ping()
    assert await store.migrate() == []
