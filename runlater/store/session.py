"""How long the database may take: the limits every Runlater session runs with.

A node must never wait on Postgres without a bound, and a session of a node that vanished
(partitioned, frozen, killed) must not hold locks for long. Each limit has one job:

- ``lock_timeout`` (server): a statement waits at most this long for a row lock that another
  session holds, then fails (``TransientConflict``; the API answers 503, actors retry). One
  node's open transaction never stalls another node for longer.
- ``statement_timeout`` (server): no statement runs longer; the work fails and rolls back.
- ``idle_in_transaction_session_timeout`` (server): a session whose client stopped talking in
  the middle of a transaction (partitioned, or frozen) is ended, which rolls back and releases
  its locks. It is also the longest a request's Idempotency-Key can stay taken by a node that
  vanished (``runlater/web/transaction.py``).
- ``client_connection_check_interval`` (server): a statement whose client hung up stops within
  this time instead of running to its end.
- TCP keepalives and ``tcp_user_timeout`` (both ends): a link that died without a word (no FIN,
  no RST: a real partition) is noticed within seconds, not the kernel's default of hours.
- The client's own deadline for a unit of work: the server's limits plus a margin, so on a
  healthy link the server's clean error always comes first, and only a stalled link trips it.
  Then the statement is cancelled on the server (a CancelRequest on a fresh connection) and
  the connection is dropped.

No limit is enforced with an asyncio timer: trio-asyncio keeps every cancelled timer until
its due time, so a timer per statement grows memory with the call rate. Deadlines are trio
cancel scopes around the crossing (``bridge.run``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DbTimeouts:
    """The limits of one node's database sessions (``RUNLATER_DB_*``; see docs/operations.md)."""

    connect_s: float = 5.0
    statement_ms: int = 5_000
    lock_ms: int = 2_000
    idle_in_transaction_ms: int = 5_000
    # The client waits this much longer than the server's own limits before it gives up.
    margin_s: float = 1.0
    keepalive_idle_s: int = 5
    keepalive_interval_s: int = 2
    keepalive_count: int = 3
    tcp_user_timeout_ms: int = 10_000
    connection_check_ms: int = 1_000

    @property
    def unit_deadline_s(self) -> float:
        """How long the client waits for one unit of work (a crossing) before it gives up.

        At least the idle-in-transaction limit plus the margin: a COMMIT sent just before the
        deadline either arrived before the server ended the session, or never takes effect
        (``RequestTransaction`` checks the same bound before it sends a COMMIT)."""
        return max(self.statement_ms, self.idle_in_transaction_ms) / 1000 + self.margin_s

    def server_settings(self, application_name: str) -> dict[str, str]:
        """Session settings sent with every connection's startup packet."""
        return {
            "application_name": application_name[:63],
            "statement_timeout": f"{self.statement_ms}ms",
            "lock_timeout": f"{self.lock_ms}ms",
            "idle_in_transaction_session_timeout": f"{self.idle_in_transaction_ms}ms",
            "client_connection_check_interval": f"{self.connection_check_ms}ms",
            "tcp_keepalives_idle": str(self.keepalive_idle_s),
            "tcp_keepalives_interval": str(self.keepalive_interval_s),
            "tcp_keepalives_count": str(self.keepalive_count),
            "tcp_user_timeout": f"{self.tcp_user_timeout_ms}ms",
        }

    def configure_socket(self, sock: Any) -> None:
        """The client end of the same keepalive/user-timeout policy (Linux options where the
        platform has them; a Unix socket needs none)."""
        if sock is None or getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", self.keepalive_idle_s),
            ("TCP_KEEPINTVL", self.keepalive_interval_s),
            ("TCP_KEEPCNT", self.keepalive_count),
            ("TCP_USER_TIMEOUT", self.tcp_user_timeout_ms),
        ):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


DEFAULT_TIMEOUTS = DbTimeouts()
