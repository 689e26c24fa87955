"""The one loop of every periodic actor: a pass, then a wait that a wake-up cuts short.

``run_periodic`` runs ``one_pass`` forever. The pass returns how long to wait before the next
one (0: go again at once, e.g. after a full batch). A ``Wake`` in the actor's mailbox ends the
wait early, and every wake-up that queued meanwhile is taken with it (one pass answers them
all). While the database is away (``StoreUnavailable``, ``TransientConflict``, or what the
actor adds to ``transient``) the wait is a backoff instead, logged with the actor's name;
anything else propagates to the supervisor, which restarts the actor.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import trio

from runlater.actors.backoff import Backoff
from runlater.actors.messages import Wake
from runlater.errors import StoreUnavailable, TransientConflict

log = logging.getLogger("runlater.actors")

TRANSIENT: tuple[type[Exception], ...] = (StoreUnavailable, TransientConflict)


async def run_periodic(
    actor: str,
    one_pass: Callable[[], Awaitable[float]],
    *,
    mailbox: trio.MemoryReceiveChannel[Wake] | None = None,
    transient: tuple[type[Exception], ...] = TRANSIENT,
    backoff: Backoff | None = None,
) -> NoReturn:
    """Forever: ``one_pass()``, then wait what it returned (seconds) or until a wake-up."""
    backoff = backoff or Backoff()
    while True:
        try:
            wait_s = await one_pass()
            backoff.reset()
        except transient as exc:
            wait_s = backoff.next_delay_s()
            log.warning("actor=%s pass failed retry_in_s=%.2f error=%s", actor, wait_s, exc)
        await wait_or_wake(wait_s, mailbox)


async def wait_or_wake(wait_s: float, mailbox: trio.MemoryReceiveChannel[Wake] | None) -> None:
    """Sleep ``wait_s`` or until a wake-up arrives, then drop the wake-ups queued behind it."""
    if wait_s <= 0:
        await trio.lowlevel.checkpoint()
    elif mailbox is None:
        await trio.sleep(wait_s)
    else:
        with trio.move_on_after(wait_s):
            await mailbox.receive()
    if mailbox is not None:
        while True:
            try:
                mailbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return


def at_interval(
    run_once: Callable[[], Awaitable[object]], interval_s: float
) -> Callable[[], Awaitable[float]]:
    """A pass for ``run_periodic`` that runs ``run_once`` and waits ``interval_s``."""

    async def one_pass() -> float:
        await run_once()
        return interval_s

    return one_pass
