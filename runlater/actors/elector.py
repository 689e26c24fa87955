"""Elector: holds the leader lease and runs the leader-only actors while it does.

Mailbox: none (ticks every ``leader_renew_s``). Emits nothing: it starts and stops the
leader-only sub-supervisor (Scheduler, Janitor; later the Monitor), which is how leadership
reaches those actors, and sets the ``leader`` metric. The lease is
a row with an expiry computed by the database clock (10 s, renewed every 3 s), not a session
advisory lock that vanishes silently with its connection. Runs on every node; one wins.

Stepping down is bound to a deadline, not to an answer: the leader's deadline is computed from
the *send* time of its last successful renewal (the database set the expiry after that
instant) minus ``SAFETY_S``. The leader-only sub-supervisor runs in a cancel scope whose
deadline is that instant, and a renewal may not wait past it either — so the leader-only
actors stop before the lease can have expired elsewhere even while a renewal hangs on a
stalled link, and whether or not the elector's own loop gets an answer.
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

from runlater import metrics
from runlater.errors import StoreError, StoreUnavailable
from runlater.store.ports import LeaseStore
from runlater.supervisor import StartedOnce

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
        store: LeaseStore,
        *,
        node: str,
        lease_s: float,
        renew_s: float,
        leader_group: Callable[[], Any] | None = None,
    ) -> None:
        self.store = store
        self.node = node
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.leader_group = leader_group
        self.is_leader = False
        self.valid_until = 0.0  # trio clock: leader-only work stops at this instant
        self._group_scope: trio.CancelScope | None = None  # of the running leader group

    async def run_once(self) -> ElectorResult:
        was = self.is_leader
        # The database computed the expiry after this instant: counting from here (not from
        # when the reply arrived) keeps the local deadline before the real one however slow
        # the reply was.
        sent_at = trio.current_time()
        valid_for = None
        answered = False
        # A leader does not wait for its renewal past its deadline: then it is no leader,
        # whatever the answer would say.
        with trio.move_on_at(self.valid_until if self.is_leader else float("inf")) as scope:
            try:
                valid_for = await self.store.acquire_leader_lease(
                    LEASE_NAME, self.node, self.lease_s
                )
                answered = True
            except StoreUnavailable as exc:
                log.warning("actor=elector cannot renew lease error=%s", exc)
        if scope.cancelled_caught:
            log.warning("actor=elector renewal still unanswered at the lease deadline")
        if not answered and self.is_leader and trio.current_time() < self.valid_until:
            return ElectorResult(True, False)  # no answer, but our lease still holds
        if valid_for is not None:
            self.valid_until = sent_at + valid_for - SAFETY_S
        self.is_leader = valid_for is not None
        metrics.LEADER.set(1 if self.is_leader else 0)
        if self._group_scope is not None:
            self._group_scope.deadline = self.valid_until if self.is_leader else -float("inf")
        if self.is_leader != was:
            log.info(
                "actor=elector leadership changed node=%s is_leader=%s", self.node, self.is_leader
            )
        return ElectorResult(self.is_leader, self.is_leader != was)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    await self.run_once()
                    if self.is_leader and self._group_scope is None and self.leader_group:
                        await nursery.start(self._run_group)
                    await trio.sleep(self.renew_s)
        finally:
            if self.is_leader:
                with trio.move_on_after(2) as scope:
                    scope.shield = True
                    with contextlib.suppress(StoreError):  # else it expires by itself
                        await self.store.release_leader_lease(LEASE_NAME, self.node)
                self.is_leader = False
                metrics.LEADER.set(0)

    async def _run_group(self, *, task_status: Any) -> None:
        """The leader-only actors, cancelled at ``valid_until`` (moved on by each renewal)."""
        assert self.leader_group is not None
        status = StartedOnce(task_status)
        with trio.CancelScope(deadline=self.valid_until) as scope:
            self._group_scope = scope
            try:
                await self.leader_group().run(task_status=status)
            finally:
                self._group_scope = None
                if scope.cancelled_caught:
                    log.info("actor=elector leader-only actors stopped node=%s", self.node)
        if not status.done:  # the deadline passed while they were starting
            status.started()
