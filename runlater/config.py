"""Settings read from ``RUNLATER_*`` environment variables, validated once at start.

CLI flags override the environment (see ``runlater.cli``). Units are part of the names.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runlater.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything a node needs to know about its environment."""

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None
    data_dir: Path | None = None
    base_url: str | None = None
    allow_private_targets: bool = False
    rate_limit_per_key: int = 600
    rate_limit_per_ip: int = 1200
    min_workers: int = 2
    max_workers: int = 50
    misfire_grace_s: float = 300.0
    restart_max: int = 5
    restart_window_s: float = 30.0
    lease_margin_s: float = 15.0
    leader_lease_s: float = 10.0
    leader_renew_s: float = 3.0
    rescue_interval_s: float = 5.0
    janitor_interval_s: float = 300.0  # retention and idempotency-key cleanup (leader only)
    poll_interval_s: float = 1.0
    heap_trim_interval_s: float = 60.0  # free C-heap pages back to the OS (runlater/heap.py)
    worker_idle_s: float = 30.0
    db_pool_size: int = 10
    # Bounds on every wait for Postgres (runlater/store/session.py, docs/operations.md).
    db_connect_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 5_000
    db_lock_timeout_ms: int = 2_000
    db_idle_in_transaction_timeout_ms: int = 5_000
    node_name: str = ""
    log_format: str = "text"  # text | json (runlater/logs.py)
    log_level: str = "INFO"
    # People and mail (docs/configuration.md).
    smtp_url: str | None = None  # unset: mails go to the log and the e-mail log only
    mail_from: str | None = None  # unset: "Runlater <runlater@HOST of the base URL>"
    signup: str = "closed"  # closed | open
    live_max_per_org: int = 100  # live websocket connections per organization and node
    ping_rate_limit_per_token: int = 60  # pings per minute per monitor and node (0: off)
    monitor_interval_s: float = 5.0  # the Monitor's longest wait between ticks (leader only)
    # Peers whose X-Forwarded-For is believed (addresses or CIDR blocks); /in/{slug} records
    # the sender's address from it (runlater/domain/inbound.py client_ip). Empty: none.
    trusted_proxies: tuple[str, ...] = ()

    @property
    def public_base_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def mail_domain(self) -> str:
        """The domain of Message-IDs: the base URL's host."""
        return urlsplit(self.public_base_url).hostname or "localhost"

    @property
    def sender(self) -> str:
        """The From of every mail."""
        if self.mail_from:
            return self.mail_from
        host = urlsplit(self.public_base_url).hostname or "localhost"
        return f"Runlater <runlater@{host}>"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _parse_number(name: str, raw: str, kind: type, minimum: float) -> int | float:
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _parse_networks(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR blocks, each checked."""
    found = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"{name} must be comma-separated IP addresses or CIDR blocks, got {part!r}"
            ) from None
        found.append(part.strip())
    return tuple(found)


# variable suffix -> (field, parser kind, minimum)
_NUMBERS: dict[str, tuple[str, type, float]] = {
    "PORT": ("port", int, 0),
    "RATE_LIMIT_PER_KEY": ("rate_limit_per_key", int, 0),
    "RATE_LIMIT_PER_IP": ("rate_limit_per_ip", int, 0),
    "MIN_WORKERS": ("min_workers", int, 0),
    "MAX_WORKERS": ("max_workers", int, 1),
    "MISFIRE_GRACE_S": ("misfire_grace_s", float, 0),
    "RESTART_MAX": ("restart_max", int, 0),
    "RESTART_WINDOW_S": ("restart_window_s", float, 0.1),
    "LEASE_MARGIN_S": ("lease_margin_s", float, 0.5),
    "LEADER_LEASE_S": ("leader_lease_s", float, 1),
    "LEADER_RENEW_S": ("leader_renew_s", float, 0.1),
    "RESCUE_INTERVAL_S": ("rescue_interval_s", float, 0.1),
    "JANITOR_INTERVAL_S": ("janitor_interval_s", float, 1),
    "POLL_INTERVAL_S": ("poll_interval_s", float, 0.01),
    "HEAP_TRIM_INTERVAL_S": ("heap_trim_interval_s", float, 1),
    "WORKER_IDLE_S": ("worker_idle_s", float, 0.1),
    "DB_POOL_SIZE": ("db_pool_size", int, 2),
    "DB_CONNECT_TIMEOUT_S": ("db_connect_timeout_s", float, 0.1),
    "DB_STATEMENT_TIMEOUT_MS": ("db_statement_timeout_ms", int, 100),
    "DB_LOCK_TIMEOUT_MS": ("db_lock_timeout_ms", int, 10),
    "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS": ("db_idle_in_transaction_timeout_ms", int, 100),
    "LIVE_MAX_PER_ORG": ("live_max_per_org", int, 1),
    "PING_RATE_LIMIT_PER_TOKEN": ("ping_rate_limit_per_token", int, 0),
    "MONITOR_INTERVAL_S": ("monitor_interval_s", float, 0.1),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build validated settings from the environment; keyword ``overrides`` (CLI flags) win."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}

    def get(suffix: str) -> str | None:
        raw = env.get(f"RUNLATER_{suffix}")
        return raw if raw is not None and raw.strip() != "" else None

    for suffix, field in (
        ("HOST", "host"),
        ("DATABASE_URL", "database_url"),
        ("BASE_URL", "base_url"),
        ("NODE_NAME", "node_name"),
        ("LOG_FORMAT", "log_format"),
        ("LOG_LEVEL", "log_level"),
        ("SMTP_URL", "smtp_url"),
        ("MAIL_FROM", "mail_from"),
        ("SIGNUP", "signup"),
    ):
        if (raw := get(suffix)) is not None:
            values[field] = raw.strip()
    if (raw := get("DATA_DIR")) is not None:
        values["data_dir"] = Path(raw).expanduser()
    if (raw := get("TRUSTED_PROXIES")) is not None:
        values["trusted_proxies"] = _parse_networks("RUNLATER_TRUSTED_PROXIES", raw)
    if (raw := get("ALLOW_PRIVATE_TARGETS")) is not None:
        values["allow_private_targets"] = _parse_bool("RUNLATER_ALLOW_PRIVATE_TARGETS", raw)
    for suffix, (field, kind, minimum) in _NUMBERS.items():
        if (raw := get(suffix)) is not None:
            values[field] = _parse_number(f"RUNLATER_{suffix}", raw, kind, minimum)
    values.update({k: v for k, v in overrides.items() if v is not None})

    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.port > 65535:
        raise ConfigError(f"RUNLATER_PORT must be a TCP port (0-65535), got {settings.port}")
    if settings.min_workers > settings.max_workers:
        raise ConfigError(
            f"RUNLATER_MIN_WORKERS ({settings.min_workers}) exceeds "
            f"RUNLATER_MAX_WORKERS ({settings.max_workers})"
        )
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"RUNLATER_LOG_FORMAT must be text or json, got {settings.log_format!r}")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"RUNLATER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {settings.log_level!r}"
        )
    if settings.leader_renew_s >= settings.leader_lease_s:
        raise ConfigError("RUNLATER_LEADER_RENEW_S must be shorter than RUNLATER_LEADER_LEASE_S")
    if settings.database_url and not settings.database_url.startswith(
        ("postgres://", "postgresql://")
    ):
        raise ConfigError("RUNLATER_DATABASE_URL must start with postgresql:// or postgres://")
    if settings.signup not in ("closed", "open"):
        raise ConfigError(f"RUNLATER_SIGNUP must be closed or open, got {settings.signup!r}")
    if settings.base_url is not None:
        base = urlsplit(settings.base_url)
        if base.scheme not in ("http", "https") or not base.hostname or base.query:
            raise ConfigError(
                "RUNLATER_BASE_URL must be an http:// or https:// URL such as "
                f"https://runlater.example.com, got {settings.base_url!r}"
            )
    if settings.smtp_url is not None:
        smtp = urlsplit(settings.smtp_url)
        if smtp.scheme not in ("smtp", "smtps") or not smtp.hostname:
            raise ConfigError(
                "RUNLATER_SMTP_URL must look like smtp://user:pass@host:587 (STARTTLS when "
                "offered) or smtps://user:pass@host:465, got a URL with scheme "
                f"{smtp.scheme!r}"
            )
        try:
            port = smtp.port
        except ValueError:
            port = 0
        if port == 0 or smtp.path not in ("", "/") or smtp.query or smtp.fragment:
            raise ConfigError(
                "RUNLATER_SMTP_URL must be scheme://[user[:password]@]host[:port] with a port "
                "of 1-65535 and nothing after it (URL-encode @ : / in the user and password)"
            )
    return settings
