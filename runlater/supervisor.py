"""One-for-one supervision with restart backoff and a crash budget.

Children are specs (name, factory, restart policy). Each child runs in its own task; a crash
(any ``Exception``; never ``trio.Cancelled``) is logged with the child's name and the child is
rebuilt from its factory after a jittered exponential backoff: a new instance, never the one
that crashed (state that must outlive a crash is in Postgres, or in an object the factory
gives to each instance). ``running`` holds the instance each child runs now. More than
``max_restarts`` crashes of one child within ``window_s`` seconds raises
:class:`SupervisorGaveUp`, which ends the node: the process exits non-zero and the container
runtime restarts it.

Children start in order, each awaited with ``nursery.start`` (a child is "up" once it calls
``task_status.started()``); on exit trio cancels them all.
"""

from __future__ import annotations

import enum
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from runlater import metrics
from runlater.errors import SupervisorGaveUp

log = logging.getLogger("runlater.supervisor")


class Runnable(Protocol):
    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None: ...


class Restart(enum.Enum):
    PERMANENT = "permanent"  # always restarted, also after a normal return
    TRANSIENT = "transient"  # restarted only after a crash
    TEMPORARY = "temporary"  # never restarted


@dataclass(frozen=True, slots=True)
class ChildSpec:
    name: str
    factory: Callable[[], Runnable]
    restart: Restart = Restart.PERMANENT


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_restarts: int = 5
    window_s: float = 30.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0

    def backoff_s(self, recent_crashes: int, rng: random.Random) -> float:
        base = min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, recent_crashes - 1))
        return base * rng.uniform(0.5, 1.0)  # jitter: nodes restarting together spread out


class StartedOnce:
    """Passes ``started()`` through to the real task status the first time only, and
    remembers whether it was (``done``)."""

    def __init__(self, task_status: Any) -> None:
        self._task_status = task_status
        self.done = False

    def started(self, value: Any = None) -> None:
        if not self.done:
            self.done = True
            self._task_status.started(value)


class Supervisor:
    def __init__(
        self,
        children: list[ChildSpec],
        policy: RestartPolicy | None = None,
        *,
        name: str = "root",
        rng: random.Random | None = None,
    ) -> None:
        self.children = children
        self.policy = policy or RestartPolicy()
        self.name = name
        self.restarts: dict[str, int] = {c.name: 0 for c in children}
        self.running: dict[str, Runnable] = {}  # the instance each factory built last
        self._rng = rng or random.Random()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for spec in self.children:
                await nursery.start(self._supervise, spec)
            task_status.started()

    async def _supervise(self, spec: ChildSpec, *, task_status: Any) -> None:
        status = StartedOnce(task_status)
        crashes: deque[float] = deque()
        while True:
            child = spec.factory()
            self.running[spec.name] = child
            try:
                await child.run(task_status=status)
            except Exception as exc:
                now = trio.current_time()
                crashes.append(now)
                while crashes and crashes[0] < now - self.policy.window_s:
                    crashes.popleft()
                log.error(
                    "actor crashed supervisor=%s actor=%s crashes_in_window=%d error=%r",
                    self.name,
                    spec.name,
                    len(crashes),
                    exc,
                    exc_info=exc,
                )
                if spec.restart is Restart.TEMPORARY:
                    status.started()
                    return
                if len(crashes) > self.policy.max_restarts:
                    raise SupervisorGaveUp(
                        f"actor {spec.name!r} crashed {len(crashes)} times within "
                        f"{self.policy.window_s:g} s; giving up"
                    ) from exc
                delay = self.policy.backoff_s(len(crashes), self._rng)
                self.restarts[spec.name] += 1
                metrics.ACTOR_RESTARTS.labels(spec.name).inc()
                log.warning("actor restarting actor=%s in_s=%.3f", spec.name, delay)
                await trio.sleep(delay)
                continue
            status.started()
            if spec.restart is not Restart.PERMANENT:
                return
            self.restarts[spec.name] += 1
            metrics.ACTOR_RESTARTS.labels(spec.name).inc()
            log.info("actor returned, restarting actor=%s", spec.name)
            await trio.sleep(self.policy.backoff_initial_s)
