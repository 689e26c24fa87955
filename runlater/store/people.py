"""Store methods for people: sign-in links, sessions, organizations' members and invitations.

Every secret a person holds arrives here only as the SHA-256 hex of its token. A change that
sends a mail (a sign-in link, an invitation) writes the mail into the outbox in the same
transaction (``store/mail.py``): the mail exists exactly when the change does.
"""

from __future__ import annotations

import secrets
from uuid import UUID

import asyncpg

from runlater.errors import Conflict, NotFound
from runlater.store import bridge
from runlater.store.base import StoreBase, fetch, fetchrow, fetchval
from runlater.store.mail import OutgoingMail as Mail
from runlater.store.mail import enqueue_mail
from runlater.store.queries import Q
from runlater.store.records import Row

# ---------------------------------------------------------------- units of work (asyncio side)


async def _issue_login_token(
    conn: asyncpg.Connection, email: str, token_hash: str, ttl_s: float
) -> bool:
    """A sign-in link for the person with ``email``, if there is one (in the caller's
    transaction)."""
    user = await conn.fetchrow(Q.find_user_by_email, email)
    if user is None:
        return False
    await conn.execute(Q.insert_login_token, token_hash, user["id"], ttl_s)
    return True


async def _request_sign_in(
    conn: asyncpg.Connection, email: str, token_hash: str, ttl_s: float, mail: Mail, domain: str
) -> bool:
    async with bridge.transaction(conn):
        if not await _issue_login_token(conn, email, token_hash, ttl_s):
            return False
        await enqueue_mail(conn, mail, organization_id=None, domain=domain)
        return True


async def _sign_in(
    conn: asyncpg.Connection, token_hash: str, session_hash: str, csrf: str, session_ttl_s: float
) -> UUID | None:
    async with bridge.transaction(conn):
        user_id = await conn.fetchval(Q.consume_login_token, token_hash)
        if user_id is None:
            return None
        org_id = await conn.fetchval(Q.first_organization_of, user_id)
        await conn.execute(Q.insert_session, session_hash, user_id, org_id, csrf, session_ttl_s)
        return user_id


async def _invite(
    conn: asyncpg.Connection,
    org_id: UUID,
    email: str,
    role: str,
    token_hash: str,
    invited_by: UUID,
    ttl_s: float,
    mail: Mail,
    domain: str,
) -> Row:
    async with bridge.transaction(conn):
        if await conn.fetchval(Q.member_exists, org_id, email):
            raise Conflict(f"{email} is already a member of this organization")
        await conn.execute(Q.delete_stale_invitation, org_id, email)
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    Q.insert_invitation, org_id, email, role, token_hash, invited_by, ttl_s
                )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"{email} already has an open invitation; revoke it first") from None
        await enqueue_mail(conn, mail, organization_id=org_id, domain=domain)
        return dict(row)


async def _accept_invitation(
    conn: asyncpg.Connection, token_hash: str, session_hash: str, csrf: str, session_ttl_s: float
) -> Row | None:
    async with bridge.transaction(conn):
        invitation = await conn.fetchrow(Q.accept_invitation, token_hash)
        if invitation is None:
            return None
        user = await conn.fetchrow(Q.find_user_by_email, invitation["email"])
        if user is None:
            user = await conn.fetchrow(Q.insert_user, invitation["email"])
        await conn.execute(
            Q.insert_membership, user["id"], invitation["organization_id"], invitation["role"]
        )
        await conn.execute(
            Q.insert_session,
            session_hash,
            user["id"],
            invitation["organization_id"],
            csrf,
            session_ttl_s,
        )
        return {**dict(invitation), "user_id": user["id"]}


async def _remove_member(conn: asyncpg.Connection, org_id: UUID, user_id: UUID) -> None:
    async with bridge.transaction(conn):
        if await conn.fetchval(Q.delete_membership, org_id, user_id) is None:
            raise NotFound("member not found")
        # Their sessions end at once (they sign in again for their other organizations).
        await conn.execute(Q.delete_user_sessions, user_id)


async def _sign_up(
    conn: asyncpg.Connection,
    email: str,
    org_name: str,
    slug: str,
    secret: str,
    token_hash: str,
    ttl_s: float,
    mail: Mail,
    mail_if_known: Mail,
    domain: str,
) -> bool:
    """A new person with a new organization (they own it), and a sign-in link by mail. An
    address that has an account gets a sign-in link only (``mail_if_known``)."""
    async with bridge.transaction(conn):
        user = await conn.fetchrow(Q.find_user_by_email, email)
        created = user is None
        if created:
            if await conn.fetchval(Q.organization_name_taken, org_name, None):
                raise Conflict("an organization with this name exists; choose another name")
            if await conn.fetchval(Q.slug_taken, slug):
                slug = f"{slug[:56]}-{secrets.token_hex(3)}"
            user = await conn.fetchrow(Q.insert_user, email)
            org = await conn.fetchrow(Q.insert_organization, org_name, slug, "free", secret)
            await conn.execute(Q.insert_membership, user["id"], org["id"], "owner")
        await conn.execute(Q.insert_login_token, token_hash, user["id"], ttl_s)
        await enqueue_mail(
            conn, mail if created else mail_if_known, organization_id=None, domain=domain
        )
        return created


# ---------------------------------------------------------------------------- the trio API


class MembersStore(StoreBase):
    """People: sign-in links, sessions, members, invitations, the organization itself."""

    # -- sign-in

    async def request_sign_in(
        self, email: str, token_hash: str, ttl_s: float, mail: Mail, domain: str
    ) -> bool:
        """A sign-in link for the person with ``email`` and its mail, when they exist."""
        found: bool = await self._run(_request_sign_in, email, token_hash, ttl_s, mail, domain)
        return found

    async def issue_login_token(self, email: str, token_hash: str, ttl_s: float) -> bool:
        """A sign-in link without a mail (``runlater login-link``); False: no such person."""
        found: bool = await self._run(_issue_login_token, email, token_hash, ttl_s)
        return found

    async def login_token_usable(self, token_hash: str) -> bool:
        usable: bool = await self._run(fetchval, Q.login_token_usable, token_hash)
        return usable

    async def sign_in(
        self, token_hash: str, session_hash: str, csrf: str, session_ttl_s: float
    ) -> UUID | None:
        """Use a sign-in link and start a session; None: used, expired or unknown."""
        user_id: UUID | None = await self._run(
            _sign_in, token_hash, session_hash, csrf, session_ttl_s
        )
        return user_id

    async def sign_up(
        self,
        email: str,
        org_name: str,
        slug: str,
        secret: str,
        token_hash: str,
        ttl_s: float,
        mail: Mail,
        mail_if_known: Mail,
        domain: str,
    ) -> bool:
        created: bool = await self._run(
            _sign_up, email, org_name, slug, secret, token_hash, ttl_s, mail, mail_if_known, domain
        )
        return created

    # -- sessions

    async def session(self, session_hash: str, session_ttl_s: float) -> Row | None:
        """The person behind a session cookie (and slides its expiry), or None."""
        found: Row | None = await self._run(fetchrow, Q.touch_session, session_hash, session_ttl_s)
        return found

    async def end_session(self, session_hash: str) -> None:
        await self._run(fetchval, Q.delete_session, session_hash)

    async def switch_organization(self, session_hash: str, org_id: UUID) -> bool:
        """Work in ``org_id`` now; False when the person is not a member of it."""
        row = await self._run(fetchrow, Q.switch_session_organization, session_hash, org_id)
        return row is not None

    async def organizations_of(self, user_id: UUID) -> list[Row]:
        found: list[Row] = await self._run(fetch, Q.organizations_of_user, user_id)
        return found

    async def delete_expired_sign_ins(self) -> int:
        deleted: int = await self._run(fetchval, Q.delete_expired_sign_ins)
        return deleted

    # -- members and invitations

    async def list_members(self, org_id: UUID) -> list[Row]:
        found: list[Row] = await self._run(fetch, Q.list_members, org_id)
        return found

    async def list_invitations(self, org_id: UUID) -> list[Row]:
        found: list[Row] = await self._run(fetch, Q.list_open_invitations, org_id)
        return found

    async def invite(
        self,
        org_id: UUID,
        email: str,
        role: str,
        token_hash: str,
        invited_by: UUID,
        ttl_s: float,
        mail: Mail,
        domain: str,
    ) -> Row:
        """An invitation and its mail. Conflict: already a member, or invited already.
        LimitExceeded: the plan's members (pending invitations included) are all taken."""
        row: Row = await self._run(
            _invite, org_id, email, role, token_hash, invited_by, ttl_s, mail, domain
        )
        return row

    async def revoke_invitation(self, org_id: UUID, invitation_id: UUID) -> Row:
        return await self._one("invitation not found", Q.revoke_invitation, org_id, invitation_id)

    async def open_invitation(self, token_hash: str) -> Row | None:
        found: Row | None = await self._run(fetchrow, Q.open_invitation, token_hash)
        return found

    async def accept_invitation(
        self, token_hash: str, session_hash: str, csrf: str, session_ttl_s: float
    ) -> Row | None:
        """Join the organization (an account is made for a new address) and start a session
        there; None: used, expired or unknown."""
        found: Row | None = await self._run(
            _accept_invitation, token_hash, session_hash, csrf, session_ttl_s
        )
        return found

    async def get_member(self, org_id: UUID, user_id: UUID) -> Row:
        return await self._one("member not found", Q.get_membership, org_id, user_id)

    async def set_member_role(self, org_id: UUID, user_id: UUID, role: str) -> Row:
        """Conflict when it would leave the organization without an owner."""
        return await self._one("member not found", Q.set_member_role, org_id, user_id, role)

    async def remove_member(self, org_id: UUID, user_id: UUID) -> None:
        """Remove (or, for oneself, leave) and end the person's sessions. Conflict: the last
        owner."""
        await self._run(_remove_member, org_id, user_id)

    # -- the organization

    async def rename_organization(self, org_id: UUID, name: str) -> Row:
        if await self._run(fetchval, Q.organization_name_taken, name, org_id):
            raise Conflict("an organization with this name exists; choose another name")
        return await self._one("organization not found", Q.rename_organization, org_id, name)

    async def set_organization_tier(self, org_id: UUID, tier: str) -> Row:
        return await self._one("organization not found", Q.set_organization_tier, org_id, tier)
