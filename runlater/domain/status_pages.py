"""Status pages: what ``PUT /status-page`` may set, and what the public page shows.

A page lists chosen tasks, heartbeat monitors, uptime checks and queues of one organization,
each with its state now and (but queues) a bar per day of the last 90 days. It is off by
default; on, it is public at ``/s/{slug}``. Badges show one resource's state or 30-day uptime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from typing import Any
from uuid import UUID

from runlater.errors import invalid
from runlater.schemas.unknown import unknown_fields
from runlater.store.ports import StatusResourceStore
from runlater.store.records import Row
from runlater.store.status import SlugTaken

ITEM_TYPES = ("task", "monitor", "uptime_check", "queue")
MAX_ITEMS = 50
DAYS = 90
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PAGE_KEYS = frozenset({"enabled", "slug", "title", "items"})


def _items(raw: Any) -> list[Row]:
    if not isinstance(raw, list):
        raise invalid({"items": ["must be a list of {type, id} (a queue: {type, name})"]})
    if len(raw) > MAX_ITEMS:
        raise invalid({"items": [f"at most {MAX_ITEMS} items"]})
    errors: dict[str, list[str]] = {}
    items: list[Row] = []
    for index, item in enumerate(raw):
        path = f"items[{index}]"
        if not isinstance(item, dict):
            errors[path] = ["must be an object: {type, id} or, for a queue, {type, name}"]
            continue
        errors.update(unknown_fields(item, {"type", "id", "name"}, prefix=f"{path}."))
        kind = item.get("type")
        if kind not in ITEM_TYPES:
            errors[f"{path}.type"] = [f"must be one of {', '.join(ITEM_TYPES)}"]
            continue
        if kind == "queue":
            ref = item.get("name")
            if not isinstance(ref, str) or not ref:
                errors[f"{path}.name"] = ["is required: the queue's name"]
                continue
        else:
            ref = item.get("id")
            try:
                ref = str(UUID(str(ref)))
            except ValueError:
                errors[f"{path}.id"] = [f"is required: the {kind}'s id"]
                continue
        items.append({"type": kind, ("name" if kind == "queue" else "id"): ref})
    if errors:
        raise invalid(errors)
    return items


def ref_of(item: Row) -> str:
    return str(item.get("name") if item["type"] == "queue" else item["id"])


@dataclass(frozen=True, slots=True)
class StatusPageService:
    store: StatusResourceStore

    async def put(self, org_id: UUID, payload: Any) -> Row:
        if not isinstance(payload, dict):
            raise invalid({"body": ["must be a JSON object"]})
        if set(payload) == {"status_page"} and isinstance(payload["status_page"], dict):
            payload = payload["status_page"]
        details = unknown_fields(payload, PAGE_KEYS)
        if details:
            raise invalid(details)
        current = await self.store.get_status_page(org_id)
        enabled = payload.get("enabled", current["enabled"])
        slug = payload.get("slug", current["slug"])
        title = payload.get("title", current["title"])
        if not isinstance(enabled, bool):
            details["enabled"] = ["must be true or false"]
        if not isinstance(slug, str) or not _SLUG.match(slug):
            details["slug"] = ["must be 1-63 lower-case letters, digits and -, not starting with -"]
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
            details["title"] = ["must be 1-200 characters"]
        if details:
            raise invalid(details)
        items = _items(payload["items"]) if "items" in payload else _items(current["items"])
        known = await self.store.existing_items(
            org_id, [i["type"] for i in items], [ref_of(i) for i in items]
        )
        missing = {
            f"items[{n}]": [
                f"no {item['type'].replace('_', ' ')} {ref_of(item)!r} in this organization"
            ]
            for n, item in enumerate(items)
            if n + 1 not in known
        }
        if missing:
            raise invalid(missing)
        try:
            return await self.store.put_status_page(
                org_id, enabled=enabled, slug=slug, title=title.strip(), items=items
            )
        except SlugTaken:
            raise invalid({"slug": [f"{slug!r} is taken; choose another"]}) from None


async def public_view(store: StatusResourceStore, slug: str, now: datetime) -> Row | None:
    """What ``/s/{slug}`` shows, or None when there is no enabled page of that slug."""
    page = await store.status_page_by_slug(slug)
    if page is None:
        return None
    items = page["items"]
    rows = await store.status_items(
        page["organization_id"], [i["type"] for i in items], [ref_of(i) for i in items], now
    )
    today = now.date()
    shown = []
    for row in rows:
        shown.append(
            {
                "type": row["kind"],
                "name": row["name"],
                "status": row["state"],
                "uptime_90d": float(row["uptime_90d"]) if row["uptime_90d"] is not None else None,
                "days": None if row["kind"] == "queue" else _days(row["days"], today),
            }
        )
    down = any(item["status"] == "down" for item in shown)
    return {
        "title": page["title"],
        "organization": page["organization_name"],
        "overall": "Some systems are down" if down else "All systems operational",
        "down": down,
        "updated_at": now.isoformat().replace("+00:00", "Z"),
        "items": shown,
    }


def _days(raw: Any, today: date) -> list[Row]:
    """One entry per day of the last 90 (oldest first): good and bad counts, and a level."""
    by_day = {date.fromisoformat(str(d)): (good, bad) for d, good, bad in raw}
    out = []
    for offset in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=offset)
        good, bad = by_day.get(day, (0, 0))
        level = "none" if good + bad == 0 else "down" if bad > good else "partial" if bad else "up"
        out.append({"day": day.isoformat(), "good": good, "bad": bad, "level": level})
    return out


# ----------------------------------------------------------------------------- badges

_COLORS = {"up": "#10b981", "down": "#dc2626", "paused": "#64748b", "new": "#64748b"}
_WORDS = {"up": "up", "down": "down", "paused": "paused", "new": "waiting"}


def _width(text: str) -> int:
    return 10 + round(len(text) * 6.6)


def badge_svg(label: str, message: str, color: str) -> str:
    """A flat two-part badge (shields.io's look), text escaped."""
    left, right = _width(label), _width(message)
    total = left + right
    label_x, message_x = left / 2, left + right / 2
    title = escape(f"{label}: {message}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<rect width="{left}" height="20" fill="#334155"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{color}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{label_x}" y="14">{escape(label)}</text>'
        f'<text x="{message_x}" y="14">{escape(message)}</text></g></svg>'
    )


def status_badge(row: Row) -> str:
    state = row["state"]
    word = _WORDS.get(state, str(state))
    return badge_svg(row["name"][:40], word, _COLORS.get(state, "#64748b"))


def uptime_badge(row: Row) -> str:
    value = row["uptime_30d"]
    if value is None:
        return badge_svg("uptime 30d", "no data", "#64748b")
    percent = float(value)
    color = "#10b981" if percent >= 99.5 else "#d97706" if percent >= 95 else "#dc2626"
    return badge_svg("uptime 30d", f"{percent:.2f}%", color)
