"""RightsWatch: the live connections that hold one credential share one check per period; a
revocation ends all of them; when the checking connection leaves, another one checks on."""

from __future__ import annotations

import trio
import trio.lowlevel
import trio.testing

from runlater.web.rights import RightsWatch

PERIOD_S = 0.5


class Credential:
    """A credential whose checks are counted, revoked at ``revoke()``."""

    def __init__(self) -> None:
        self.checks: list[float] = []
        self.allowed = True

    async def still_allowed(self) -> bool:
        self.checks.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        return self.allowed


async def test_a_hundred_connections_on_one_credential_share_one_check_per_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    watch = RightsWatch()
    key = Credential()
    ended: list[int] = []

    async def connection(i: int) -> None:
        await watch.until_revoked("k", key.still_allowed, PERIOD_S)
        ended.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(100):
            nursery.start_soon(connection, i)
        await trio.sleep(10 * PERIOD_S + 0.1)
        assert len(key.checks) == 10  # not 1,000
        assert watch.groups() == 1
        key.allowed = False
        revoked_at = trio.current_time()
    assert sorted(ended) == list(range(100))  # every connection learnt it
    assert key.checks[-1] - revoked_at <= PERIOD_S
    assert watch.groups() == 0


async def test_when_the_checking_connection_leaves_another_checks_on_schedule(
    autojump_clock: trio.testing.MockClock,
) -> None:
    watch = RightsWatch()
    key = Credential()
    async with trio.open_nursery() as nursery:
        scopes = []
        for _ in range(3):
            scope = trio.CancelScope()
            scopes.append(scope)

            async def connection(scope: trio.CancelScope = scope) -> None:
                with scope:
                    await watch.until_revoked("k", key.still_allowed, PERIOD_S)

            nursery.start_soon(connection)
        await trio.sleep(2 * PERIOD_S + 0.1)
        assert len(key.checks) == 2
        for scope in scopes[:2]:  # the checker leaves (and one other); one connection is left
            scope.cancel()
        await trio.sleep(3 * PERIOD_S)
        assert len(key.checks) == 5
        gaps = [b - a for a, b in zip(key.checks, key.checks[1:], strict=False)]
        assert all(abs(gap - PERIOD_S) < 1e-6 for gap in gaps)  # no check skipped or late
        key.allowed = False
    assert watch.groups() == 0


async def test_credentials_are_checked_apart_and_a_newcomer_after_a_revocation_starts_afresh(
    autojump_clock: trio.testing.MockClock,
) -> None:
    watch = RightsWatch()
    first, second = Credential(), Credential()
    first.allowed = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch.until_revoked, "a", first.still_allowed, PERIOD_S)
        nursery.start_soon(watch.until_revoked, "b", second.still_allowed, PERIOD_S)
        await trio.sleep(PERIOD_S + 0.1)
        assert len(first.checks) == 1 and len(second.checks) == 1
        assert watch.groups() == 1  # "a" is over, "b" goes on
        # A connection that passed its own check for "a" later is watched afresh.
        first.allowed = True
        nursery.start_soon(watch.until_revoked, "a", first.still_allowed, PERIOD_S)
        await trio.sleep(2 * PERIOD_S + 0.1)  # off the checks' instants: trio orders ties freely
        assert len(first.checks) == 3 and watch.groups() == 2
        nursery.cancel_scope.cancel()
    assert watch.groups() == 0
