"""Prometheus metrics of one node (``GET /metrics``), through the official ``prometheus-client``.

Counters and histograms count what this node did since it started (Prometheus sums nodes);
the queue depth, which describes the whole cluster, is read from Postgres when scraped. Labels
are bounded: outcomes, statuses, actor names, route templates (never ids or URLs).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

# Seconds; deliveries are bounded by timeout_ms (at most 300 s).
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)

EXECUTIONS = Counter(
    "runlater_executions",
    "Delivery attempts this node finished, by outcome",
    ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "runlater_delivery_duration_seconds",
    "Time from connect to the end of the response, per delivery attempt",
    buckets=_DURATION_BUCKETS,
)
LATENESS_SECONDS = Histogram(
    "runlater_scheduling_lateness_seconds",
    "How long after its scheduled time a delivery attempt started",
    buckets=_LATENESS_BUCKETS,
)
ACTOR_RESTARTS = Counter(
    "runlater_actor_restarts",
    "Actors restarted by their supervisor, after a crash or a return",
    ["actor"],
)
LEADER = Gauge("runlater_leader", "1 while this node holds the leader lease, else 0")
DB_POOL_IN_USE = Gauge(
    "runlater_db_pool_in_use", "Database connections of this node's pool lent out now"
)
DB_POOL_SIZE = Gauge("runlater_db_pool_size", "Largest number of connections the pool opens")
API_REQUESTS = Counter(
    "runlater_api_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
QUEUE_DEPTH = Gauge(
    "runlater_queue_depth",
    "Executions waiting or running in the whole cluster, by status (read when scraped)",
    ["status"],
)
QUEUE_DEPTH_STATUSES = ("pending", "running")


def watch_pool(in_use: Callable[[], float], size: int) -> None:
    """Report the pool's connections lent out, read at scrape time."""
    DB_POOL_IN_USE.set_function(in_use)
    DB_POOL_SIZE.set(size)


def set_queue_depth(counts: dict[str, int]) -> None:
    for status in QUEUE_DEPTH_STATUSES:
        QUEUE_DEPTH.labels(status).set(counts.get(status, 0))


def exposition() -> tuple[bytes, str]:
    """The text format and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
