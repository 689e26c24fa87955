"""Inbound endpoints as every front door changes them (REST, sync, the dashboard), and what
happens to a request at ``/in/{slug}``.

Receiving is one statement when the endpoint checks no signature: the event, its forward
tasks and their first executions (``InboundStore.receive_inbound_event``). With a signature
scheme the same statement first answers the endpoint's settings without storing; the request
is checked (``inbound_signatures``) and the statement runs again with the verdict. Raises
``runlater.errors.InvalidInput``; passes the store's ``NotFound``.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from runlater.clock import Clock
from runlater.domain.inbound_signatures import Verification, verify
from runlater.domain.service import Accepted
from runlater.domain.urls import NOT_ALLOWED, FieldWarning, UrlPolicy
from runlater.errors import InvalidInput, LimitExceeded, NotFound, invalid
from runlater.schemas.inbound import (
    DEFAULT_TOLERANCE_S,
    MAX_REPLAY_EVENTS,
    EndpointFields,
    ReplayRequest,
    parse_endpoint,
)
from runlater.schemas.sync import INVALID, EndpointSyncItem, SyncDraft, under
from runlater.store.bulk import TaskSyncResult
from runlater.store.inbound import (
    DecideEndpoints,
    EndpointSyncPlan,
    EndpointTaken,
    EventFilter,
    InboundPort,
    InboundRequest,
)
from runlater.store.records import Row

SLUG_LENGTH = 24  # 24 of [a-z0-9]: 124 bits, not guessable
_SLUG_ALPHABET = string.ascii_lowercase + string.digits
URL_FIELDS = ("on_failure_url", "on_recovery_url")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NOTIFY_DEFAULTS: dict[str, Any] = {
    "notify_on_failure": True,
    "notify_on_recovery": True,
    "on_failure_url": None,
    "on_recovery_url": None,
    "alert_after": 1,
}
_DEFAULTS: dict[str, Any] = {
    "forward_urls": [],
    "enabled": True,
    "retry_attempts": 5,
    "use_queue": False,
    "forward_method": None,
    "forward_headers": {},
    "forward_body": None,
    "forward_authorization": False,
    **_NOTIFY_DEFAULTS,
}
VERIFY_COLUMNS = (
    "verify_scheme",
    "verify_secret",
    "verify_header",
    "verify_encoding",
    "verify_tolerance_s",
)
# Every column an edit writes (update_endpoint writes them all).
EDITABLE = ("name", "slug", *_DEFAULTS, *VERIFY_COLUMNS)


def new_slug() -> str:
    return "".join(secrets.choice(_SLUG_ALPHABET) for _ in range(SLUG_LENGTH))


# ------------------------------------------------------------------------ the resource


def _verify_columns(fields: EndpointFields) -> Row:
    v = fields.verify
    if v is None:
        return {c: None for c in VERIFY_COLUMNS} | {"verify_tolerance_s": DEFAULT_TOLERANCE_S}
    return {
        "verify_scheme": v.scheme,
        "verify_secret": v.secret,
        "verify_header": v.header,
        "verify_encoding": (v.encoding or "hex") if v.scheme == "hmac" else None,
        "verify_tolerance_s": v.tolerance_s or DEFAULT_TOLERANCE_S,
    }


def _given(data: dict[str, Any], fields: EndpointFields) -> Row:
    """The columns the body sets (a key given as null resets a nullable field or takes the
    default)."""
    row: Row = {}
    for key in data:
        if key == "verify":
            row.update(_verify_columns(fields))
            continue
        value = getattr(fields, key)
        if value is None and key in _DEFAULTS:
            value = _DEFAULTS[key]
        row[key] = value
    return row


def draft_endpoint(payload: Any) -> Row:
    """The row of a new endpoint from a ``POST /endpoints`` body (a slug made when none is
    given)."""
    data, fields = parse_endpoint(payload)
    if fields.name is None:
        raise invalid({"name": ["is required"]})
    row: Row = {**_DEFAULTS, **_verify_columns(fields)}
    row.update(_given(data, fields))
    row["slug"] = fields.slug or new_slug()
    return row


def plan_endpoint_edit(payload: Any) -> Any:
    """``PATCH /endpoints/{id}``: a function of the current row giving every editable column
    (fields left out keep their value; ``verify`` replaces the whole check, null removes it)."""
    data, fields = parse_endpoint(payload)
    if "name" in data and fields.name is None:
        raise invalid({"name": ["must not be null"]})
    if "slug" in data and fields.slug is None:
        raise invalid({"slug": ["must not be null"]})
    changes = _given(data, fields)

    def plan(current: Row) -> Row:
        return {c: changes[c] if c in changes else current[c] for c in EDITABLE}

    return plan


def _name_or_slug_taken(exc: EndpointTaken) -> InvalidInput:
    if exc.field == "slug":
        return invalid({"slug": [f"the slug {exc.value!r} is taken; choose another"]})
    return invalid({"name": [f"an endpoint named {exc.value!r} exists already; names are unique"]})


def decide_endpoints(items: Sequence[EndpointSyncItem]) -> DecideEndpoints:
    """The store's callback for ``PUT /sync``: from the locked endpoints with the declared
    names, what to create, what to edit (as ``PATCH /endpoints/{id}``), what is unchanged."""

    def plan_for(existing: list[Row]) -> EndpointSyncPlan:
        by_name = {row["name"]: row for row in existing}
        plan = EndpointSyncPlan()
        errors: dict[str, list[str]] = {}
        for item in items:
            current = by_name.get(item.name)
            try:
                if current is None:
                    plan.create.append((item.name, draft_endpoint(item.data)))
                    continue
                columns = plan_endpoint_edit(item.data)(current)
                if any(columns[c] != current[c] for c in columns):
                    plan.update.append((item.name, current["id"], columns))
                else:
                    plan.unchanged.append(item.name)
            except InvalidInput as exc:
                errors.update(under(item.path, exc))
        if errors:
            raise invalid(errors, INVALID)
        return plan

    return plan_for


# ---------------------------------------------------------------------------- receiving


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """``RUNLATER_TRUSTED_PROXIES`` entries (addresses or CIDR blocks) as networks."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = raw.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The sender's address: the TCP peer, unless the peer is a trusted proxy; then the
    right-most ``X-Forwarded-For`` address that is not a trusted proxy (each proxy appends the
    address it received from, so anything left of an untrusted one may be forged)."""
    if peer is None:
        return None
    peer_address = _address(peer)
    if peer_address is None or not trusted or not any(peer_address in n for n in trusted):
        return peer
    chain = [part for header in forwarded_for for part in header.split(",") if part.strip()]
    found = peer
    for raw in reversed(chain):
        address = _address(raw)
        if address is None:
            break
        found = str(address)
        if not any(address in n for n in trusted):
            break
    return found


def received_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers as stored: names in lower case, repeated ones joined with ``, ``
    (NUL, which no stored text can hold, becomes U+FFFD)."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower().replace("\x00", "\ufffd")
        clean = value.replace("\x00", "\ufffd")
        headers[key] = f"{headers[key]}, {clean}" if key in headers else clean
    return headers


@dataclass(frozen=True, slots=True)
class Received:
    """What ``/in/{slug}`` answers: ``outcome`` and, when stored, the event's id (and the
    reason of a rejection)."""

    outcome: Literal["received", "rejected", "not_found", "disabled", "limit_exceeded"]
    event_id: UUID | None = None
    reason: str | None = None


def _verification(row: Row) -> Verification:
    return Verification(
        scheme=row["verify_scheme"],
        secret=row["verify_secret"],
        header=row["verify_header"],
        encoding=row["verify_encoding"],
        tolerance_s=row["verify_tolerance_s"],
    )


def _received(row: Row | None) -> Received | None:
    """The answer a statement's row gives, or None when the request must still be checked."""
    if row is None:
        return Received("not_found")
    if not row["enabled"]:
        return Received("disabled")
    if row["event_id"] is None:
        return None
    return Received(row["status"], row["event_id"])


@dataclass(frozen=True, slots=True)
class InboundService:
    store: InboundPort
    urls: UrlPolicy
    clock: Clock

    async def _check_urls(self, row: Row) -> list[FieldWarning]:
        """The SSRF guard on every URL the row calls: one ``url_not_allowed`` naming each
        refused one (``forward_urls[i]``), else the warnings."""
        refused: dict[str, list[str]] = {}
        warnings: list[FieldWarning] = []
        for i, url in enumerate(row.get("forward_urls") or []):
            try:
                found = await self.urls.check({"url": url}, ("url",))
            except InvalidInput as exc:
                refused[f"forward_urls[{i}]"] = (exc.details or {}).get("url", [exc.message])
                continue
            warnings.extend(FieldWarning(f"forward_urls[{i}]", w.message) for w in found)
        try:
            warnings.extend(await self.urls.check(row, URL_FIELDS))
        except InvalidInput as exc:
            refused.update(exc.details or {})
        if refused:
            raise InvalidInput("url_not_allowed", NOT_ALLOWED, refused)
        return warnings

    async def create(self, org_id: UUID, payload: object) -> Accepted[Row]:
        row = draft_endpoint(payload)
        warnings = await self._check_urls(row)
        try:
            return Accepted(await self.store.insert_endpoint(org_id, row), warnings)
        except EndpointTaken as exc:
            raise _name_or_slug_taken(exc) from None

    async def update(self, org_id: UUID, endpoint_id: UUID, payload: object) -> Accepted[Row]:
        plan = plan_endpoint_edit(payload)
        data, fields = parse_endpoint(payload)
        warnings = await self._check_urls(
            {k: getattr(fields, k) for k in ("forward_urls", *URL_FIELDS) if k in data}
        )
        try:
            return Accepted(await self.store.update_endpoint(org_id, endpoint_id, plan), warnings)
        except EndpointTaken as exc:
            raise _name_or_slug_taken(exc) from None

    async def delete(self, org_id: UUID, endpoint_id: UUID) -> None:
        await self.store.delete_endpoint(org_id, endpoint_id)

    async def sync(
        self, org_id: UUID, draft: SyncDraft, *, dry_run: bool
    ) -> Accepted[TaskSyncResult] | None:
        """Make the organization's endpoints match the declared ones, matched by name (None
        when the request leaves endpoints out)."""
        items = draft.endpoints
        if items is None:
            return None
        warnings: list[FieldWarning] = []
        refused: dict[str, list[str]] = {}
        for item in items:
            try:
                found = await self._check_urls(item.data)
            except InvalidInput as exc:
                refused.update(under(item.path, exc))
                continue
            warnings.extend(FieldWarning(f"{item.path}.{w.field}", w.message) for w in found)
        if refused:
            raise InvalidInput("url_not_allowed", NOT_ALLOWED, refused)
        try:
            result = await self.store.sync_endpoints(
                org_id,
                [item.name for item in items],
                decide_endpoints(items),
                delete_removed=draft.delete_removed,
                dry_run=dry_run,
            )
        except EndpointTaken as exc:
            raise _name_or_slug_taken(exc) from None
        return Accepted(result, warnings)

    # -- events

    async def list_events(
        self, org_id: UUID, endpoint_id: UUID, where: EventFilter, *, limit: int, offset: int
    ) -> list[Row]:
        return await self.store.list_inbound_events(
            org_id, endpoint_id, where, limit=limit, offset=offset
        )

    async def get_event(self, org_id: UUID, endpoint_id: UUID, event_id: UUID) -> Row:
        return await self.store.get_inbound_event(org_id, endpoint_id, event_id)

    async def forwards_of(self, org_id: UUID, event_ids: Sequence[UUID]) -> dict[UUID, list[Row]]:
        """Each event's forwards (the shape of ``get_event``'s ``forwards``), by event id."""
        found: dict[UUID, list[Row]] = {}
        for row in await self.store.inbound_forwards_of(org_id, event_ids):
            found.setdefault(row["event_id"], []).append(row)
        return found

    async def activity(self, org_id: UUID, since: datetime) -> dict[UUID, Row]:
        """Per endpoint id: ``events_24h`` (events received since ``since``: the dashboard
        asks for the last 24 h), ``rejected_24h`` (of them rejected), ``last_event_at``."""
        return {
            row["endpoint_id"]: {
                "events_24h": row["events"],
                "rejected_24h": row["rejected"],
                "last_event_at": row["last_event_at"],
            }
            for row in await self.store.inbound_activity(org_id, since)
        }

    async def replay_event(self, org_id: UUID, endpoint_id: UUID, event_id: UUID) -> Row:
        """New forwards of one event (whatever its status) to the endpoint's URLs now."""
        done = await self.store.replay_inbound_events(
            org_id, endpoint_id, EventFilter(event_ids=[event_id]), 1
        )
        if not done["events"]:
            raise NotFound("event not found")
        return done

    async def replay(self, org_id: UUID, endpoint_id: UUID, request: ReplayRequest) -> Row:
        """New forwards of the events the filters choose; ``received`` ones unless ``status``
        or ``event_ids`` say otherwise."""
        status = request.status
        if status is None and request.event_ids is None:
            status = "received"
        return await self.store.replay_inbound_events(
            org_id,
            endpoint_id,
            EventFilter(request.event_ids, status, request.since, request.until),
            request.limit or MAX_REPLAY_EVENTS,
        )

    # -- /in/{slug}

    async def receive(self, request: InboundRequest) -> Received:
        """Store the request (and its forwards, unless it is rejected) and say what to answer.
        Over a hard monthly limit the event is kept as rejected with the limit's message."""
        try:
            return await self._receive(request)
        except LimitExceeded as exc:
            row = await self.store.receive_inbound_event(request, "rejected", exc.message)
            answer = _received(row)
            if answer is None or answer.outcome != "rejected":
                return answer or Received("not_found")
            return Received("limit_exceeded", answer.event_id, exc.message)

    async def _receive(self, request: InboundRequest) -> Received:
        row = await self.store.receive_inbound_event(request, None, None)
        answer = _received(row)
        if answer is not None:
            return answer
        assert row is not None
        now_s = int(request.at.timestamp())
        reason = verify(_verification(row), request.headers, request.body, now_s)
        verdict = "received" if reason is None else "rejected"
        row = await self.store.receive_inbound_event(request, verdict, reason)
        answer = _received(row)
        if answer is None:  # the endpoint changed in between: a check is due again
            return Received("not_found")
        return Received(answer.outcome, answer.event_id, reason)
