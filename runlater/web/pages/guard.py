"""Who is asking, and may they: the session cookie, CSRF tokens, the Origin check, roles.

- The session cookie ``runlater_session`` holds a random token; the database keeps its hash
  (``domain/people.py``). HttpOnly, SameSite=Lax, Path=/, Secure when the base URL is https.
- Every state-changing request (POST) must come from the base URL's origin: its ``Origin``
  header (or, without one, its ``Referer``) is compared with ``RUNLATER_BASE_URL``; anything
  else is refused with 403 before a form is read.
- Every form carries a CSRF token: the session's own when signed in, else a random value that
  is also in the HttpOnly cookie ``runlater_csrf`` (double submit). A stale token gives the form
  back with a message (``StaleForm``), the other values kept.
- Roles: a page or an action names what it needs (``domain.people.Action``); the check runs
  on the server for every request, whatever the page showed.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from quart import Response, g, request
from werkzeug.datastructures import MultiDict

from runlater.domain.people import Action, may
from runlater.errors import invalid
from runlater.store.records import Row
from runlater.web.context import services

SESSION_COOKIE = "runlater_session"
CSRF_COOKIE = "runlater_csrf"
CSRF_FIELD = "csrf_token"
FORM_FIELD_MAX = 10_000

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class Refused(Exception):
    """403: a cross-site request, or a role that may not do this."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StaleForm(Exception):
    """The form's CSRF token is missing or no longer valid: show the form again."""


@dataclass
class Person:
    """The signed-in person of this request, in the organization they work in now."""

    user_id: UUID
    email: str
    csrf: str
    session_token: str
    org_id: UUID | None
    role: str | None
    org_name: str | None
    tier: str | None
    organizations: list[Row] = field(default_factory=list)

    def may(self, action: Action) -> bool:
        return may(self.role, action)


def secure_cookies() -> bool:
    return urlsplit(services().settings.public_base_url).scheme == "https"


def set_session_cookie(response: Response, token: str, max_age_s: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(),
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=secure_cookies()
    )


async def load_person() -> None:
    """``before_request`` of the pages: ``g.person`` is the signed-in person or None."""
    g.person = None
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return
    row = await services().people.session(token)
    if row is None:
        return
    person = Person(
        user_id=row["user_id"],
        email=row["email"],
        csrf=row["csrf_token"],
        session_token=token,
        org_id=row["organization_id"] if row["role"] is not None else None,
        role=row["role"],
        org_name=row["organization_name"],
        tier=row["tier"],
    )
    person.organizations = await services().store.organizations_of(person.user_id)
    g.person = person


def same_origin() -> None:
    """``before_request``: a POST from anywhere but the base URL's origin is refused."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = origin_of(services().settings.public_base_url)
    sent = request.headers.get("Origin")
    if sent is None or sent == "null":
        referer = request.headers.get("Referer")
        sent = origin_of(referer) if referer else None
    if sent is None or sent.rstrip("/") != expected:
        raise Refused(
            "This request did not come from a page of this server, so it was refused. "
            "Open the page again and submit the form from there."
        )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (the default port left out), as browsers send it."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{(parts.hostname or '').lower()}{port}"


def anonymous_csrf() -> str:
    """The CSRF token of a form shown to someone not signed in (also set as a cookie by
    ``remember_anonymous_csrf``)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) != 43:
        token = g.get("new_csrf") or secrets.token_urlsafe(32)
        g.new_csrf = token
    return token


def remember_anonymous_csrf(response: Response) -> Response:
    """``after_request``: set the cookie of a token handed out in this response."""
    token = g.get("new_csrf")
    if token:
        response.set_cookie(
            CSRF_COOKIE, token, path="/", httponly=True, samesite="Lax", secure=secure_cookies()
        )
    return response


def csrf_token() -> str:
    person: Person | None = g.get("person")
    return person.csrf if person is not None else anonymous_csrf()


async def posted() -> MultiDict[str, str]:
    """The posted form, unchecked (check it with ``check_form``)."""
    form: MultiDict[str, str] = await request.form
    return form


def check_form(form: MultiDict[str, str]) -> None:
    """Raise StaleForm when the form's CSRF token is missing or wrong, InvalidInput for a
    field that is too long."""
    sent = form.get(CSRF_FIELD, "")
    person: Person | None = g.get("person")
    expected = person.csrf if person is not None else request.cookies.get(CSRF_COOKIE, "")
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise StaleForm()
    for name, value in form.items(multi=True):
        if len(value) > FORM_FIELD_MAX:
            raise invalid({name: [f"at most {FORM_FIELD_MAX} characters"]})


async def read_form() -> MultiDict[str, str]:
    """The posted form, checked (``check_form``)."""
    form = await posted()
    check_form(form)
    return form


def signed_in(action: Action = Action.READ) -> Callable[[F], F]:
    """The page needs a signed-in person whose role in the current organization allows
    ``action``. Not signed in → the sign-in page; not allowed → 403."""

    def wrap(view: F) -> F:
        @wraps(view)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            person: Person | None = g.get("person")
            if person is None:
                return Response("", status=303, headers={"Location": "/login"})
            if person.org_id is None:
                return Response("", status=303, headers={"Location": "/organizations"})
            if not person.may(action):
                raise Refused(
                    f"Your role ({person.role}) in {person.org_name} does not allow this. "
                    "Ask an owner or an admin."
                )
            return await view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return wrap


def current() -> Person:
    """The signed-in person (inside a ``signed_in`` view)."""
    person: Person = g.person
    return person


def org_id() -> UUID:
    found = current().org_id
    assert found is not None  # signed_in() checked it
    return found
