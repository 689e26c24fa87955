"""The URLs a task may call: every one passes the SSRF guard when the task is written.

Only what is known to be blocked is refused (``url_not_allowed``); a host name that does not
resolve now is accepted with a warning, and the connect-time guard decides at each delivery.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runlater.delivery.resolver import Resolver
from runlater.delivery.ssrf import UrlNotAllowed, check_url
from runlater.errors import InvalidInput

TASK_URL_FIELDS = (
    "url",
    "callback_url",
    "failure_callback_url",
    "on_failure_url",
    "on_recovery_url",
)
NOT_ALLOWED = "a URL points where Runlater may not call"


@dataclass(frozen=True, slots=True)
class FieldWarning:
    """Something the caller should know about an accepted field, e.g. a host that does not
    resolve now; ``field`` is the field's path as sent."""

    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """How URLs are checked: ``allow_private`` is ``RUNLATER_ALLOW_PRIVATE_TARGETS``;
    ``resolver`` answers host names (None: the system's; tests pin answers)."""

    allow_private: bool
    resolver: Resolver | None = None

    async def check_fields(
        self,
        groups: Iterable[tuple[str, Mapping[str, Any]]],
        names: tuple[str, ...] = TASK_URL_FIELDS,
    ) -> list[FieldWarning]:
        """Check the URL fields ``names`` of each ``(path prefix, fields)``; one
        ``url_not_allowed`` error naming every refused field, else the warnings."""
        refused: dict[str, list[str]] = {}
        warnings: list[FieldWarning] = []
        for prefix, fields in groups:
            for name in names:
                if not fields.get(name):
                    continue
                try:
                    warning = await check_url(
                        fields[name], allow_private=self.allow_private, resolver=self.resolver
                    )
                except UrlNotAllowed as exc:
                    refused[f"{prefix}{name}"] = [str(exc)]
                    continue
                if warning is not None:
                    warnings.append(FieldWarning(f"{prefix}{name}", warning))
        if refused:
            raise InvalidInput("url_not_allowed", NOT_ALLOWED, refused)
        return warnings

    async def check(
        self, fields: Mapping[str, Any], names: tuple[str, ...] = TASK_URL_FIELDS
    ) -> list[FieldWarning]:
        return await self.check_fields([("", fields)], names)
