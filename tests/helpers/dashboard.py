"""A person at the dashboard, through the app's test client: cookies kept, the page's CSRF
token sent back with each form, ``Origin`` set to the base URL as a browser sets it."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from quart.typing import TestClientProtocol

from runlater.domain.people import token_hash
from runlater.store.postgres import Store

BASE_URL = "http://127.0.0.1:8000"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LINK = re.compile(r"(https?://\S+/(?:login|invite)/[A-Za-z0-9_-]+)")


@dataclass
class Page:
    status: int
    text: str
    headers: Any

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.text)
        assert found, f"no form on the page:\n{self.text[:2000]}"
        return html.unescape(found.group(1))

    @property
    def location(self) -> str | None:
        found: str | None = self.headers.get("Location")
        return found


@dataclass
class Visitor:
    client: TestClientProtocol
    origin: str = BASE_URL
    last: Page | None = field(default=None)

    async def get(self, path: str, **kwargs: Any) -> Page:
        response = await self.client.get(path, **kwargs)
        self.last = Page(
            response.status_code, await response.get_data(as_text=True), response.headers
        )
        return self.last

    async def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        csrf: str | None = None,
        origin: str | bool | None = True,
    ) -> Page:
        """POST a form; ``csrf`` defaults to the token of the last page seen."""
        form = dict(data or {})
        if csrf is None and self.last is not None and _CSRF.search(self.last.text):
            csrf = self.last.csrf
        if csrf:
            form["csrf_token"] = csrf
        headers = {}
        if origin is True:
            headers["Origin"] = self.origin
        elif isinstance(origin, str):
            headers["Origin"] = origin
        response = await self.client.post(path, form=form, headers=headers)
        self.last = Page(
            response.status_code, await response.get_data(as_text=True), response.headers
        )
        return self.last

    async def submit(self, page_path: str, action: str, data: dict[str, str] | None = None) -> Page:
        """Open ``page_path`` and send one of its forms to ``action``."""
        await self.get(page_path)
        return await self.post(action, data)

    def cookie(self, name: str) -> str | None:
        jar = getattr(self.client, "cookie_jar", None)
        assert jar is not None, "the test client keeps no cookies"
        for cookie in jar:
            if cookie.name == name:
                return cookie.value
        return None


def link_in(text: str) -> str:
    found = _LINK.search(text)
    assert found, f"no link in:\n{text}"
    return found.group(1)


async def mails_to(store: Store, address: str) -> list[dict[str, Any]]:
    """The mails written for ``address``, oldest first, with their bodies."""
    rows = await store.list_mails(limit=500)
    wanted = address.lower()
    found = [await store.get_mail(r["id"]) for r in rows if r["to_address"] == wanted]
    return sorted(found, key=lambda r: (r["inserted_at"], r["id"]))


async def sign_in(store: Store, visitor: Visitor, email: str) -> UUID:
    """Sign ``visitor`` in as ``email`` (an existing account) by the mailed link; the user id."""
    await visitor.get("/login")
    await visitor.post("/login", {"email": email})
    link = link_in((await mails_to(store, email))[-1]["text_body"])
    path = "/login/" + link.rsplit("/", 1)[1]
    await visitor.get(path)
    page = await visitor.post(path)
    assert page.status == 303, page.text[:2000]
    row = await store.session(token_hash(visitor.cookie("runlater_session") or ""), 60)
    assert row is not None
    user_id: UUID = row["user_id"]
    return user_id
