"""Listener: NOTIFY → Wake hints; a killed connection is replaced and everyone is woken."""

from __future__ import annotations

import trio

from runlater.actors.listener import Listener
from runlater.actors.messages import Wake
from runlater.store.postgres import Store


async def _next(channel: trio.MemoryReceiveChannel[Wake], containing: str) -> Wake:
    with trio.fail_after(10):
        while True:
            message = await channel.receive()
            if containing in message.reason:
                return message


async def test_notify_reaches_the_routed_mailbox_and_reconnects(store: Store) -> None:
    """Without the termination listener and reconnect loop, the second NOTIFY would never
    arrive after the server killed the LISTEN connection."""
    send, recv = trio.open_memory_channel[Wake](16)
    other_send, other_recv = trio.open_memory_channel[Wake](16)
    listener = Listener(store.dsn, {"runlater_executions": [send], "runlater_tasks": [other_send]})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listener.run)
        with trio.fail_after(10):
            await listener.connected.wait()
        await store.notify_executions()
        assert "runlater_executions" in (await _next(recv, "notify")).reason
        assert other_recv.receive_nowait().reason == "listener connected"  # nothing else

        killed = await store._run(  # the server drops the LISTEN session
            lambda conn: conn.fetchval(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where query like 'LISTEN%' and datname = current_database()"
            )
        )
        assert killed == 1
        await _next(other_recv, "listener connected")  # everyone woken after reconnecting
        await store.notify_executions()
        await _next(recv, "notify runlater_executions")
        assert listener.reconnects >= 1
        nursery.cancel_scope.cancel()
