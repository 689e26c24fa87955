"""The project's exception hierarchy.

Library and driver errors are translated into these where they enter the code base
(the original kept as ``__cause__``), so callers never depend on asyncpg or httpx types.
"""

from __future__ import annotations


class RunlaterError(Exception):
    """Root of every error Runlater raises on purpose."""


class ConfigError(RunlaterError):
    """Raised by ``runlater.config`` when a ``RUNLATER_*`` variable is invalid."""


class PostgresNotFound(RunlaterError):
    """Raised by the embedded Postgres module when no server binaries can be found."""


class EmbeddedPostgresError(RunlaterError):
    """Raised by the embedded Postgres module when initdb/pg_ctl fails or the data dir is
    unusable."""


class StoreError(RunlaterError):
    """Raised by the store for a database error that is neither transient nor a conflict (a bug)."""


class StoreUnavailable(StoreError):
    """Raised by the store when Postgres cannot be reached (down, restarting, connection lost).

    Transient: actors back off and retry; the API answers 503.
    """


class NotFound(StoreError):
    """Raised by the store when a row does not exist in the caller's organization."""


class Conflict(StoreError):
    """Raised by the store when a unique constraint or a concurrent update refuses a write."""


class TransientConflict(Conflict):
    """Raised by the store for a deadlock, serialization failure or lock timeout: the same
    write can simply be tried again (actors back off and retry, as for StoreUnavailable)."""


class LimitExceeded(RunlaterError):
    """Raised by the store when the organization's plan refuses a write: new executions over a
    hard monthly limit, or a cron task that runs more often than the plan allows. The database
    decides (migration 006, with the numbers of ``runlater.plans``); ``field`` names what the
    limit is about, for the API's ``422 limit_exceeded`` details."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(RunlaterError):
    """Raised by ``runlater.schemas`` and ``runlater.domain`` for input that cannot be accepted.

    ``code`` is the stable code the API shows (``validation_error``, ``invalid_json``,
    ``invalid_delay``, ``invalid_run_at``, ``url_not_allowed``, ``payload_too_large``);
    ``details`` maps a field's path (``tasks[3].cron_expression``) to its messages. Neither
    layer knows HTTP: ``runlater.web.errors`` maps each code to its status."""

    def __init__(
        self, code: str, message: str, details: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def invalid(details: dict[str, list[str]], message: str = "invalid input") -> InvalidInput:
    """422 ``validation_error``: the fields in ``details`` are wrong, each with its messages."""
    return InvalidInput("validation_error", message, details)


class InvalidCron(RunlaterError):
    """Raised by ``runlater.cron`` for an unparsable cron expression or an unknown time zone."""


class SupervisorGaveUp(RunlaterError):
    """Raised by the supervisor when a child crashed more often than the restart policy allows.

    The node stops and the process exits non-zero so that the container runtime restarts it.
    """
