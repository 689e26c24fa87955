"""What a notification event becomes: one notification per channel (and per extra URL of the
resource), each sent, waiting to be sent, or suppressed with the reason — without I/O.

The Notifier hands ``plan_events`` the events it locked and what it read of their
organizations (``OrgContext``); the store writes the drafts in the transaction that marks the
events done. The rules:

* Channels: the organization's enabled channels whose ``events`` list the event; an
  organization without any channel gets e-mail to its owners. A resource's extra URL
  (``on_failure_url`` / ``on_recovery_url``) gets the signed webhook payload as well.
* A resource whose notifications are off (``notify_on_failure`` / ``notify_on_recovery``
  false), or a maintenance window that covers the organization or the resource, suppress
  every notification of the event: recorded with the reason, never sent.
* At most ``MAX_FAILURE_MAILS_PER_HOUR`` failure e-mails per organization and clock hour; the
  rest are suppressed as throttled and one summary mail lists them at the end of the hour.
* The format is chosen by the channel's type (Slack ``{"text"}``, Discord ``{"content"}``,
  Teams a message card, webhook a signed JSON event), never guessed from the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from runlater.cron import CronSchedule
from runlater.errors import InvalidCron
from runlater.mail import compose
from runlater.mail.message import Mail
from runlater.schemas.notifications import OWNERS

FAILURE_EVENTS = frozenset({"task.failed", "monitor.down", "endpoint.failed"})
MAX_FAILURE_MAILS_PER_HOUR = 3

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """What every format says: a title, the lines under it, and where to look."""

    title: str
    lines: list[str]
    link: str


@dataclass(slots=True)
class OrgContext:
    """What the planner needs of one organization, read in the Notifier's transaction."""

    name: str
    channels: list[Row]
    owners: list[str]
    windows: list[Row]
    failure_mails_this_hour: int
    summary_planned: bool  # this hour's summary exists already


@dataclass(slots=True)
class Draft:
    """One notification to write: ``status`` ``sent`` (an e-mail handed to the mail outbox
    with it), ``pending`` (an HTTP channel, sent by the Notifier) or ``suppressed``."""

    organization_id: UUID
    event_id: UUID | None
    event: str
    resource_type: str | None
    resource_id: UUID | None
    channel_id: UUID | None
    channel_type: str
    target: str
    payload: dict[str, Any]
    status: str
    reason: str | None = None
    mails: list[Mail] = field(default_factory=list)
    next_attempt_at: datetime | None = None
    summary_of: datetime | None = None


# ------------------------------------------------------------------------------ messages


def message_for(event: Row, base_url: str) -> Message:
    """The words of an event, whatever the channel."""
    kind, name, details = event["event"], event["resource_name"] or "", event["details"] or {}
    rid = event["resource_id"]
    if kind == "task.failed":
        failures = details.get("consecutive_failures", 1)
        streak = f" ({failures} failures in a row)" if failures and failures > 1 else ""
        return Message(
            f"Task failed: {name}",
            [f"The task's last run failed{streak}: {details.get('error') or 'no detail'}."],
            f"{base_url}/tasks/{rid}",
        )
    if kind == "task.recovered":
        return Message(
            f"Task recovered: {name}",
            ["The task ran successfully again."],
            f"{base_url}/tasks/{rid}",
        )
    if kind == "monitor.down":
        return Message(
            f"Monitor down: {name}",
            [f"The monitor went down: {details.get('reason') or 'no ping in time'}."],
            f"{base_url}/monitors/{rid}",
        )
    if kind == "monitor.up":
        return Message(
            f"Monitor up: {name}",
            ["The monitor is up again: a success ping arrived."],
            f"{base_url}/monitors/{rid}",
        )
    if kind == "endpoint.failed":
        return Message(
            f"Endpoint forward failing: {name}",
            [f"Forwarding an inbound webhook failed: {details.get('error') or 'no detail'}."],
            f"{base_url}/endpoints/{rid}",
        )
    if kind == "endpoint.recovered":
        return Message(
            f"Endpoint forward recovered: {name}",
            ["Forwarding inbound webhooks succeeds again."],
            f"{base_url}/endpoints/{rid}",
        )
    used, limit = details.get("used", 0), details.get("limit", 0)
    month = details.get("month", "")
    if kind == "usage.warning":
        return Message(
            "80 % of this month's executions used",
            [f"{used:,} of {limit:,} executions used in {month}."],
            f"{base_url}/settings",
        )
    if kind == "usage.exhausted":
        return Message(
            "This month's executions are used up",
            [f"{used:,} of {limit:,} executions used in {month}; see your plan's limits."],
            f"{base_url}/settings",
        )
    if kind == "channel.test":
        return Message(
            "Test notification from Runlater",
            ["This channel works: Runlater can reach it."],
            f"{base_url}/settings",
        )
    raise ValueError(f"unknown notification event {kind!r}")


def webhook_event(event: Row, message: Message, organization: str) -> dict[str, Any]:
    """The generic webhook's JSON (signed like deliveries when sent)."""
    return {
        "type": event["event"],
        "occurred_at": _iso(event.get("occurred_at")),
        "organization": organization,
        "resource": {
            "type": event.get("resource_type"),
            "id": str(event["resource_id"]) if event.get("resource_id") else None,
            "name": event.get("resource_name"),
        },
        "title": message.title,
        "text": " ".join(message.lines),
        "link": message.link,
        "details": {k: v for k, v in (event.get("details") or {}).items() if k not in ("notify",)},
    }


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value if isinstance(value, str) else None


def channel_payload(channel_type: str, event: Row, message: Message, organization: str) -> Any:
    """The JSON a chat or webhook channel gets."""
    text = " ".join(message.lines)
    if channel_type == "slack":
        return {"text": f"*{message.title}*\n{text}\n<{message.link}|Open in Runlater>"}
    if channel_type == "discord":
        return {"content": f"**{message.title}**\n{text}\n{message.link}"}
    if channel_type == "teams":
        failing = event["event"] in FAILURE_EVENTS or event["event"] == "usage.exhausted"
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": message.title,
            "themeColor": "D7000C" if failing else "10B981",
            "title": message.title,
            "text": text,
            "potentialAction": [
                {
                    "@type": "OpenUri",
                    "name": "Open in Runlater",
                    "targets": [{"os": "default", "uri": message.link}],
                }
            ],
        }
    if channel_type == "webhook":
        return webhook_event(event, message, organization)
    raise ValueError(f"no payload for channel type {channel_type!r}")


def mails_for(addresses: list[str], message: Message, organization: str) -> list[Mail]:
    return [
        compose.notification_mail(
            to=address,
            title=message.title,
            lines=message.lines,
            link=message.link,
            organization=organization,
        )
        for address in addresses
    ]


# ------------------------------------------------------------------------ maintenance


def window_covers(window: Row, event: Row, now: datetime) -> bool:
    """Whether a maintenance window mutes this event now."""
    if window["resource_type"] is not None and (
        window["resource_type"] != event.get("resource_type")
        or window["resource_id"] != event.get("resource_id")
    ):
        return False
    if window["cron"] is None:
        starts = window["starts_at"]
        return (starts is None or starts <= now) and now < window["ends_at"]
    try:
        schedule = CronSchedule(window["cron"], window["timezone"])
    except InvalidCron:
        return False
    duration = timedelta(minutes=window["duration_minutes"])
    # A recurring window is open when one of its starts lies within its duration before now.
    return bool(schedule.runs_between(now - duration, now, limit=1))


def describe_window(window: Row) -> str:
    what = f"maintenance window{': ' + window['reason'] if window.get('reason') else ''}"
    if window["cron"] is None:
        return f"{what} (until {_iso(window['ends_at'])})"
    every = f"{window['cron']} {window['timezone']}, {window['duration_minutes']} min"
    return f"{what} (recurring: {every})"


# ----------------------------------------------------------------------------- planning


def _targets(event: Row, ctx: OrgContext) -> list[tuple[UUID | None, str, str]]:
    """(channel id, type, target) of every place this event goes."""
    if ctx.channels:
        found: list[tuple[UUID | None, str, str]] = [
            (c["id"], c["type"], c["target"])
            for c in ctx.channels
            if c["enabled"] and event["event"] in c["events"]
        ]
    else:
        found = [(None, "email", OWNERS)]
    extra = (event.get("details") or {}).get("extra_url")
    if extra:
        found.append((None, "webhook", extra))
    return found


def _addresses(target: str, ctx: OrgContext) -> list[str]:
    return list(ctx.owners) if target == OWNERS else [target]


def hour_of(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def plan_events(
    events: list[Row], contexts: dict[UUID, OrgContext], now: datetime, base_url: str
) -> list[Draft]:
    """Every notification the events make, in event order."""
    drafts: list[Draft] = []
    for event in events:
        ctx = contexts[event["organization_id"]]
        message = message_for(event, base_url)
        details = event.get("details") or {}
        reason: str | None = None
        if details.get("notify") is False:
            reason = f"notifications are turned off for this {event['resource_type']}"
        else:
            for window in ctx.windows:
                if window_covers(window, event, now):
                    reason = describe_window(window)
                    break
        for channel_id, channel_type, target in _targets(event, ctx):
            draft = Draft(
                organization_id=event["organization_id"],
                event_id=event["id"],
                event=event["event"],
                resource_type=event.get("resource_type"),
                resource_id=event.get("resource_id"),
                channel_id=channel_id,
                channel_type=channel_type,
                target=target,
                payload={"title": message.title, "lines": message.lines, "link": message.link},
                status="pending",
            )
            if reason is not None:
                draft.status, draft.reason = "suppressed", reason
            elif channel_type == "email":
                _plan_mail(draft, event, message, ctx, now, drafts)
            else:
                draft.payload = channel_payload(channel_type, event, message, ctx.name)
            drafts.append(draft)
    return drafts


def _plan_mail(
    draft: Draft, event: Row, message: Message, ctx: OrgContext, now: datetime, drafts: list[Draft]
) -> None:
    addresses = _addresses(draft.target, ctx)
    if not addresses:
        draft.status, draft.reason = "failed", "the organization has no owner to mail"
        return
    if event["event"] in FAILURE_EVENTS:
        if ctx.failure_mails_this_hour >= MAX_FAILURE_MAILS_PER_HOUR:
            draft.status = "suppressed"
            draft.reason = (
                f"throttled: {MAX_FAILURE_MAILS_PER_HOUR} failure mails this hour already; "
                "a summary follows at the end of the hour"
            )
            if not ctx.summary_planned:
                ctx.summary_planned = True
                hour = hour_of(now)
                drafts.append(
                    Draft(
                        organization_id=draft.organization_id,
                        event_id=None,
                        event="summary",
                        resource_type=None,
                        resource_id=None,
                        channel_id=draft.channel_id,
                        channel_type="email",
                        target=draft.target,
                        payload={"hour": hour.isoformat()},
                        status="pending",
                        next_attempt_at=hour + timedelta(hours=1),
                        summary_of=hour,
                    )
                )
            return
        ctx.failure_mails_this_hour += 1
    draft.status = "sent"
    draft.mails = mails_for(addresses, message, ctx.name)


def summary_mails(
    addresses: list[str], throttled: list[Row], organization: str, hour: datetime, base_url: str
) -> list[Mail]:
    """The end-of-hour mail that lists what the throttle held back."""
    lines = [f"{_iso(row['inserted_at'])}  {row['payload']['title']}" for row in throttled]
    title = f"Several things are failing in {organization}"
    intro = (
        f"After {MAX_FAILURE_MAILS_PER_HOUR} failure mails in the hour from "
        f"{_iso(hour)}, {len(throttled)} more failures were not mailed one by one:"
    )
    return [
        compose.notification_mail(
            to=address,
            title=title,
            lines=[intro, *lines],
            link=f"{base_url}/notifications",
            organization=organization,
        )
        for address in addresses
    ]
