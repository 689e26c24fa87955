"""Whether a live connection may still listen: one check per credential and period, however
many connections hold the credential.

A thousand dashboard tabs or programs on one API key used to wake a thousand times every
check period, each asking the key cache (0.44 of a core on an idle node in
``python -m bench.live --only memory``). Now the connections that hold one credential form a
group: one member checks every period, the others wait; when the checker leaves, another
member takes over on the same schedule, so no check is skipped or delayed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio


@dataclass(slots=True)
class _Group:
    next_check: float
    members: int = 0
    checking: bool = False
    revoked: bool = False
    changed: trio.Event = field(default_factory=trio.Event)

    def signal(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class RightsWatch:
    """The groups of one node's live connections, by credential."""

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}

    def groups(self) -> int:
        return len(self._groups)

    async def until_revoked(
        self, credential: str, still_allowed: Callable[[], Awaitable[bool]], period_s: float
    ) -> None:
        """Return once ``still_allowed()`` said no for ``credential`` (checked every
        ``period_s`` by one of the connections that wait here for it)."""
        group = self._groups.get(credential)
        if group is None or group.revoked:  # a newcomer passed its own check just now
            group = self._groups[credential] = _Group(trio.current_time() + period_s)
        group.members += 1
        try:
            while not group.revoked:
                if group.checking:
                    await group.changed.wait()
                    continue
                group.checking = True
                try:
                    while True:
                        await trio.sleep_until(group.next_check)
                        group.next_check = trio.current_time() + period_s
                        if not await still_allowed():
                            group.revoked = True
                            return
                finally:
                    group.checking = False
                    group.signal()  # the others: one of you checks now, or it is over
        finally:
            group.members -= 1
            if group.members == 0 and self._groups.get(credential) is group:
                del self._groups[credential]
