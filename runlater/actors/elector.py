"""Elector: holds the leader lease and runs the leader-only actors while it does.

Mailbox: none (ticks every ``leader_renew_s``). Emits: ``LeadershipChanged`` to subscribers, and
starts/stops the leader-only sub-supervisor (Scheduler, Janitor; later the Monitor). The lease is
a row with an expiry computed by the database clock (10 s, renewed every 3 s), not a session
advisory lock that vanishes silently with its connection. When renewing fails, the node steps down
before the lease it last saw can have expired elsewhere. Runs on every node; one wins.
On crash the leader-only actors stop with it; the lease runs out or is renewed after restart.
Leadership only saves work: duplicates are prevented in the database (unique run index + CAS).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from runlater.actors.messages import LeadershipChanged, hint
from runlater.errors import StoreError, StoreUnavailable
from runlater.store.postgres import Store

log = logging.getLogger("runlater.actors.elector")

LEASE_NAME = "leader"
SAFETY_S = 1.0  # step down this long before the lease we last saw runs out


@dataclass(frozen=True, slots=True)
class ElectorResult:
    is_leader: bool
    changed: bool


class Elector:
    def __init__(
        self,
        store: Store,
        *,
        node: str,
        lease_s: float,
        renew_s: float,
        leader_group: Callable[[], Any] | None = None,
        subscribers: list[trio.MemorySendChannel[Any]] | None = None,
    ) -> None:
        self.store = store
        self.node = node
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.leader_group = leader_group
        self.subscribers = subscribers or []
        self.is_leader = False
        self._valid_until = 0.0  # trio clock

    async def run_once(self) -> ElectorResult:
        was = self.is_leader
        # The database computed the expiry after this instant: counting from here (not from
        # when the reply arrived) keeps the local deadline before the real one however slow
        # the reply was.
        sent_at = trio.current_time()
        try:
            valid_for = await self.store.acquire_leader_lease(LEASE_NAME, self.node, self.lease_s)
        except StoreUnavailable as exc:
            log.warning("actor=elector cannot renew lease error=%s", exc)
            valid_for = None
            if self.is_leader and trio.current_time() < self._valid_until:
                return ElectorResult(True, False)  # our lease still holds
        if valid_for is not None:
            self._valid_until = sent_at + valid_for - SAFETY_S
        self.is_leader = valid_for is not None
        if self.is_leader != was:
            log.info(
                "actor=elector leadership changed node=%s is_leader=%s", self.node, self.is_leader
            )
            for channel in self.subscribers:
                hint(channel, LeadershipChanged(self.is_leader))
        return ElectorResult(self.is_leader, self.is_leader != was)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                group_scope: trio.CancelScope | None = None
                while True:
                    await self.run_once()
                    if self.is_leader and group_scope is None and self.leader_group is not None:
                        group_scope = await nursery.start(self._run_group)
                    elif not self.is_leader and group_scope is not None:
                        group_scope.cancel()
                        group_scope = None
                    await trio.sleep(self.renew_s)
        finally:
            if self.is_leader:
                with trio.move_on_after(2) as scope:
                    scope.shield = True
                    with contextlib.suppress(StoreError):  # else it expires by itself
                        await self.store.release_leader_lease(LEASE_NAME, self.node)
                self.is_leader = False

    async def _run_group(self, *, task_status: Any) -> None:
        assert self.leader_group is not None
        with trio.CancelScope() as scope:
            await self.leader_group().run(task_status=_StartedWith(task_status, scope))


class _StartedWith:
    """Hands the cancel scope of the leader group back through ``nursery.start``."""

    def __init__(self, task_status: Any, scope: trio.CancelScope) -> None:
        self._task_status = task_status
        self._scope = scope

    def started(self, value: Any = None) -> None:
        self._task_status.started(self._scope)
