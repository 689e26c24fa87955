"""People as every front door handles them: sign-in links, sessions, roles, invitations.

The rules live here, not in the pages: what a valid address or organization name is, which
role may do what, how long a link or a session lasts, how a link is built (always from
``RUNLATER_BASE_URL``, never from a request's Host header). Tokens are 32 random bytes; the
store only ever sees their SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit
from uuid import UUID

from runlater import apikeys
from runlater.config import Settings
from runlater.errors import InvalidInput, invalid
from runlater.mail import compose
from runlater.store.ports import PeopleStore
from runlater.store.records import Row

LOGIN_TTL_S = 15 * 60
INVITE_TTL_S = 7 * 24 * 3600
SESSION_TTL_S = 14 * 24 * 3600
EMAIL_MAX = 254
ORG_NAME_MAX = 200
ROLES = ("owner", "admin", "member")
# A pragmatic address check: one @, something on each side, a dot in the domain, no spaces or
# control characters. (Deliverability is the mail server's to judge.)
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")


class Action(Enum):
    """What a person may do in an organization, by role (the server checks every one)."""

    READ = "read"
    RUN = "run"  # run now, retry
    MANAGE_WORK = "manage_work"  # tasks, queues, keys, secrets
    INVITE = "invite"
    MANAGE_MEMBERS = "manage_members"  # roles, removal
    MANAGE_PLAN = "manage_plan"  # plan, organization name


ALLOWED: dict[str, frozenset[Action]] = {
    "member": frozenset({Action.READ, Action.RUN}),
    "admin": frozenset({Action.READ, Action.RUN, Action.MANAGE_WORK, Action.INVITE}),
    "owner": frozenset(Action),
}


def may(role: str | None, action: Action) -> bool:
    return role is not None and action in ALLOWED.get(role, frozenset())


def new_token() -> tuple[str, str]:
    """A fresh token (43 URL-safe characters: 32 random bytes) and the hash the store keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    return slug or "org"


def _no_control(field: str, value: str) -> None:
    if "\x00" in value or any(ord(c) < 32 and c not in "\t" for c in value):
        raise invalid({field: ["must not contain control characters"]})


def clean_email(raw: object, field: str = "email") -> str:
    """A lower-cased address, or InvalidInput saying what is wrong."""
    if not isinstance(raw, str) or not raw.strip():
        raise invalid({field: ["enter your e-mail address"]})
    value = raw.strip()
    _no_control(field, value)
    if len(value) > EMAIL_MAX:
        raise invalid({field: [f"at most {EMAIL_MAX} characters"]})
    if not _EMAIL.match(value):
        raise invalid({field: ["enter an address like name@example.com"]})
    return value.lower()


def clean_org_name(raw: object, field: str = "name") -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise invalid({field: ["enter a name"]})
    value = " ".join(raw.split())
    _no_control(field, raw)
    if len(value) > ORG_NAME_MAX:
        raise invalid({field: [f"at most {ORG_NAME_MAX} characters"]})
    return value


def clean_role(raw: object, field: str = "role") -> str:
    if raw not in ROLES:
        raise invalid({field: ["choose owner, admin or member"]})
    return str(raw)


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started: the cookie's value and the forms' CSRF token."""

    token: str
    csrf: str
    user_id: UUID


class Denied(Exception):
    """The person's role does not allow the action (the web layer answers 403)."""


@dataclass(frozen=True, slots=True)
class PeopleService:
    store: PeopleStore
    settings: Settings

    @property
    def base_url(self) -> str:
        return self.settings.public_base_url

    @property
    def mail_domain(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    def link(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -- sign-in

    async def request_sign_in(self, raw_email: object) -> None:
        """Mail a sign-in link when the address has an account. Answers the same either way
        (the caller shows one page), and composes the mail either way, so that both take
        about as long."""
        email = clean_email(raw_email)
        token, hashed = new_token()
        mail = compose.login_mail(
            to=email, link=self.link(f"/login/{token}"), minutes=LOGIN_TTL_S // 60
        )
        await self.store.request_sign_in(email, hashed, LOGIN_TTL_S, mail, self.mail_domain)

    async def login_link(self, raw_email: object) -> str | None:
        """A fresh sign-in link for an existing person (``runlater login-link``); None: no
        account with this address."""
        email = clean_email(raw_email)
        token, hashed = new_token()
        if not await self.store.issue_login_token(email, hashed, LOGIN_TTL_S):
            return None
        return self.link(f"/login/{token}")

    async def link_usable(self, token: str) -> bool:
        return await self.store.login_token_usable(token_hash(token))

    async def sign_in(self, token: str) -> NewSession | None:
        session, hashed = new_token()
        csrf = secrets.token_urlsafe(32)
        user_id = await self.store.sign_in(token_hash(token), hashed, csrf, SESSION_TTL_S)
        return None if user_id is None else NewSession(session, csrf, user_id)

    async def sign_up(self, raw_email: object, raw_org: object) -> None:
        errors: dict[str, list[str]] = {}
        email = org = ""
        try:
            email = clean_email(raw_email)
        except InvalidInput as exc:
            errors.update(exc.details or {})
        try:
            org = clean_org_name(raw_org, "organization")
        except InvalidInput as exc:
            errors.update(exc.details or {})
        if errors:
            raise invalid(errors)
        token, hashed = new_token()
        link = self.link(f"/login/{token}")
        minutes = LOGIN_TTL_S // 60
        await self.store.sign_up(
            email,
            org,
            slugify(org),
            apikeys.new_webhook_secret(),
            hashed,
            LOGIN_TTL_S,
            compose.signup_mail(to=email, link=link, organization=org, minutes=minutes),
            # An address with an account gets a plain sign-in link, no second organization.
            compose.login_mail(to=email, link=link, minutes=minutes),
            self.mail_domain,
        )

    # -- sessions

    async def session(self, token: str) -> Row | None:
        return await self.store.session(token_hash(token), SESSION_TTL_S)

    async def sign_out(self, token: str) -> None:
        await self.store.end_session(token_hash(token))

    async def switch_organization(self, token: str, org_id: UUID) -> bool:
        return await self.store.switch_organization(token_hash(token), org_id)

    # -- members and invitations

    async def invite(
        self, org_id: UUID, org_name: str, inviter: Row, raw_email: object, raw_role: object
    ) -> Row:
        """Invite an address with a role. Only an owner may invite an owner."""
        email = clean_email(raw_email)
        role = clean_role(raw_role)
        if role == "owner" and not may(inviter["role"], Action.MANAGE_MEMBERS):
            raise invalid({"role": ["only an owner may invite an owner"]})
        token, hashed = new_token()
        mail = compose.invite_mail(
            to=email,
            link=self.link(f"/invite/{token}"),
            organization=org_name,
            inviter=inviter["email"],
            role=role,
            days=INVITE_TTL_S // 86400,
        )
        return await self.store.invite(
            org_id,
            email,
            role,
            hashed,
            inviter["user_id"],
            INVITE_TTL_S,
            mail,
            self.mail_domain,
        )

    async def open_invitation(self, token: str) -> Row | None:
        return await self.store.open_invitation(token_hash(token))

    async def accept_invitation(self, token: str) -> tuple[NewSession, Row] | None:
        session, hashed = new_token()
        csrf = secrets.token_urlsafe(32)
        row = await self.store.accept_invitation(token_hash(token), hashed, csrf, SESSION_TTL_S)
        if row is None:
            return None
        return NewSession(session, csrf, row["user_id"]), row
