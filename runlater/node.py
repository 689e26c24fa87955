"""A node: store, actors and web app in one supervised nursery (one ``trio.run``)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from runlater import metrics
from runlater.actors.callbacker import Callbacker
from runlater.actors.elector import Elector
from runlater.actors.event_feeder import EventFeeder
from runlater.actors.heap_trimmer import HeapTrimmer
from runlater.actors.janitor import Janitor
from runlater.actors.listener import Listener
from runlater.actors.mailer import Mailer
from runlater.actors.messages import Notice, NoticeBox, Wake
from runlater.actors.monitor import Monitor
from runlater.actors.notifier import Notifier
from runlater.actors.pool import PoolCarry, PoolManager
from runlater.actors.rescuer import Rescuer
from runlater.actors.scheduler import Scheduler
from runlater.actors.uptime_checker import UptimeChecker
from runlater.clock import Clock, SystemClock
from runlater.config import Settings
from runlater.delivery.client import Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.errors import StoreUnavailable, TransientConflict
from runlater.events import Hub
from runlater.store.ports import NodeStore
from runlater.store.postgres import Store
from runlater.store.session import DbTimeouts
from runlater.supervisor import ChildSpec, RestartPolicy, Supervisor
from runlater.web.app import create_app
from runlater.web.server import WebServer

log = logging.getLogger("runlater.node")

MAILBOX_SIZE = 16
EVENT_MAILBOX_SIZE = 1000  # notices (one per committed statement) the feeder may lag behind


def node_name(settings: Settings) -> str:
    return settings.node_name or f"{socket.gethostname()}:{os.getpid()}"


def db_timeouts(settings: Settings) -> DbTimeouts:
    """The session limits of this node's database connections (``RUNLATER_DB_*``)."""
    return DbTimeouts(
        connect_s=settings.db_connect_timeout_s,
        statement_ms=settings.db_statement_timeout_ms,
        lock_ms=settings.db_lock_timeout_ms,
        idle_in_transaction_ms=settings.db_idle_in_transaction_timeout_ms,
    )


@dataclass
class Node:
    """What a running node exposes to its caller: the supervision tree, and the instance each
    child runs now (a restarted child is a new instance; tests read ``web.bound``)."""

    settings: Settings
    store: NodeStore
    supervisor: Supervisor
    pool_carry: PoolCarry = field(default_factory=PoolCarry)
    hub: Hub = field(default_factory=Hub)  # this node's live events (runlater/events.py)

    def child(self, name: str) -> Any:
        """The running instance of the root supervisor's child ``name``."""
        return self.supervisor.running[name]

    @property
    def web(self) -> WebServer:
        web: WebServer = self.child("web")
        return web

    @property
    def pool(self) -> PoolManager:
        pool: PoolManager = self.child("pool")
        return pool

    @property
    def elector(self) -> Elector:
        elector: Elector = self.child("elector")
        return elector


OutboundFactory = Callable[[Settings], httpx.AsyncBaseTransport]


def outbound_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """The transport for every URL Runlater calls: it checks each address at connect (the
    SSRF guard) and keeps idle connections per host."""
    return TrioTransport(
        allow_private=settings.allow_private_targets,
        max_idle_per_host=max(64, settings.max_workers),
    )


async def migrate_with_retry(store: NodeStore, attempts: int = 30) -> list[int]:
    for attempt in range(1, attempts + 1):
        try:
            return await store.migrate()
        except (StoreUnavailable, TransientConflict) as exc:
            if attempt == attempts:
                raise
            log.warning("database not ready, retrying migrations attempt=%d error=%s", attempt, exc)
            await trio.sleep(min(5.0, 0.2 * attempt))
    return []


def build_node(
    settings: Settings,
    store: NodeStore,
    http: httpx.AsyncBaseTransport,
    clock: Clock | None = None,
) -> Node:
    """The supervision tree of one node; ``http`` is the outbound transport (it must check
    the addresses it connects to, as ``outbound_transport`` does)."""
    clock = clock or SystemClock()
    name = node_name(settings)
    pool_send, pool_recv = trio.open_memory_channel[Wake](MAILBOX_SIZE)
    sched_send, sched_recv = trio.open_memory_channel[Wake](MAILBOX_SIZE)
    callback_send, callback_recv = trio.open_memory_channel[Wake](MAILBOX_SIZE)
    mail_send, mail_recv = trio.open_memory_channel[Wake](MAILBOX_SIZE)
    notify_send, notify_recv = trio.open_memory_channel[Wake](MAILBOX_SIZE)
    # Event notices wait here for the feeder; when it falls this far behind, subscribers are
    # told to read the state again (NoticeBox), and nothing else waits.
    events_send, events_recv = trio.open_memory_channel[Notice](EVENT_MAILBOX_SIZE)
    hub = Hub()
    deliverer = Deliverer(http)
    carry = PoolCarry()  # outlives pool crashes: what one instance leaves to the next
    policy = RestartPolicy(max_restarts=settings.restart_max, window_s=settings.restart_window_s)

    def leader_group() -> Supervisor:
        return Supervisor(
            [
                ChildSpec(
                    "scheduler",
                    lambda: Scheduler(
                        store, clock, misfire_grace_s=settings.misfire_grace_s, mailbox=sched_recv
                    ),
                ),
                ChildSpec(
                    "janitor",
                    lambda: Janitor(store, clock, interval_s=settings.janitor_interval_s),
                ),
                ChildSpec(
                    "monitor",
                    lambda: Monitor(store, clock, interval_s=settings.monitor_interval_s),
                ),
                ChildSpec("uptime_checker", lambda: UptimeChecker(store, deliverer.sender, clock)),
            ],
            policy,
            name="leader",
        )

    def elector() -> Elector:
        return Elector(
            store,
            node=name,
            lease_s=settings.leader_lease_s,
            renew_s=settings.leader_renew_s,
            leader_group=leader_group,
        )

    def pool() -> PoolManager:
        return PoolManager(
            store,
            deliverer,
            settings,
            node=name,
            mailbox=pool_recv,
            wake=pool_send.clone(),
            carry=carry,
        )

    def web() -> WebServer:
        return WebServer(
            create_app(store, settings, clock, hub=hub), host=settings.host, port=settings.port
        )

    routes = {
        "runlater_executions": [pool_send.clone()],
        "runlater_tasks": [sched_send.clone()],
        "runlater_callbacks": [callback_send.clone()],
        "runlater_mail": [mail_send.clone()],
        "runlater_notifications": [notify_send.clone()],
    }
    supervisor = Supervisor(
        [
            ChildSpec(
                "listener",
                lambda: Listener(
                    store.dsn,
                    routes,
                    notices={"runlater_events": NoticeBox(events_send)},
                    timeouts=store.timeouts,
                    application_name=f"{store.application_name} listener",
                ),
            ),
            ChildSpec("elector", elector),
            ChildSpec("pool", pool),
            ChildSpec("rescuer", lambda: Rescuer(store, interval_s=settings.rescue_interval_s)),
            ChildSpec(
                "callbacker",
                lambda: Callbacker(
                    store, deliverer.sender, poll_s=settings.poll_interval_s, mailbox=callback_recv
                ),
            ),
            ChildSpec(
                "mailer",
                lambda: Mailer(
                    store,
                    smtp_url=settings.smtp_url,
                    sender=settings.sender,
                    poll_s=settings.poll_interval_s,
                    mailbox=mail_recv,
                ),
            ),
            ChildSpec(
                "notifier",
                lambda: Notifier(
                    store,
                    deliverer.sender,
                    clock,
                    base_url=settings.public_base_url,
                    mail_domain=settings.mail_domain,
                    poll_s=settings.poll_interval_s,
                    mailbox=notify_recv,
                ),
            ),
            ChildSpec("event_feeder", lambda: EventFeeder(store, hub, events_recv)),
            ChildSpec(
                "heap_trimmer", lambda: HeapTrimmer(interval_s=settings.heap_trim_interval_s)
            ),
            ChildSpec("web", web),
        ],
        policy,
        name="root",
    )
    return Node(settings, store, supervisor, carry, hub)


async def run_node(
    settings: Settings,
    dsn: str,
    *,
    clock: Clock | None = None,
    outbound: OutboundFactory = outbound_transport,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Open the store, migrate, and run every actor until cancelled (needs a trio-asyncio loop).

    ``task_status.started(node)`` fires once the web server listens. ``outbound`` builds the
    transport for deliveries and callbacks (the benchmark swaps in a baseline).
    """
    if settings.allow_private_targets:
        log.warning(
            "RUNLATER_ALLOW_PRIVATE_TARGETS is on: deliveries may reach loopback and "
            "private addresses (metadata addresses stay blocked)"
        )
    store = await Store.open(
        dsn,
        pool_size=settings.db_pool_size,
        timeouts=db_timeouts(settings),
        application_name=f"runlater {node_name(settings)}",
    )
    try:
        applied = await migrate_with_retry(store)
        if applied:
            log.info("migrations applied versions=%s", applied)
        metrics.watch_pool(store.pool_in_use, store.pool_size)
        async with outbound(settings) as http:
            node = build_node(settings, store, http, clock)
            async with trio.open_nursery() as nursery:
                await nursery.start(node.supervisor.run)
                log.info(
                    "node started name=%s url=%s", node_name(settings), ",".join(node.web.bound)
                )
                task_status.started(node)
    finally:
        with trio.CancelScope(shield=True):
            await store.close()
