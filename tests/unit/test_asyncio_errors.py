"""An error asyncio reports as unhandled (asyncpg's orphaned futures after a lost connection)
is logged, not raised into the loop: under trio-asyncio's default it would end the loop and
the node with it."""

from __future__ import annotations

import asyncio
import logging

import pytest
import trio
import trio.lowlevel
import trio_asyncio

from runlater.store import bridge


async def test_an_unretrieved_driver_error_is_logged_and_the_loop_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="runlater.store"):
        async with bridge.open_loop() as loop:
            loop.call_exception_handler(
                {
                    "message": "Future exception was never retrieved",
                    "exception": ConnectionError("unexpected connection_lost() call"),
                }
            )
            for _ in range(5):
                await trio.lowlevel.checkpoint()  # trio-asyncio's default would raise it in here
            assert await bridge_still_runs(loop)
    [record] = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert "ConnectionError" in record.getMessage()


async def bridge_still_runs(loop: asyncio.AbstractEventLoop) -> bool:
    async def answer() -> bool:
        await asyncio.sleep(0)
        return True

    result: bool = await trio_asyncio.aio_as_trio(answer)()
    return result
