"""Members and invitations: invite by e-mail, accept, change a role, remove, leave."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, g

from runlater.domain.people import ROLES, SESSION_TTL_S, Action, clean_role
from runlater.errors import Conflict, InvalidInput, LimitExceeded
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, form_values, page, to

bp = Blueprint("members", __name__)


async def members_page(status: int = 200, **context: Any) -> Response:
    store = services().store
    person = guard.current()
    return await page(
        "members.html",
        status,
        members=await store.list_members(guard.org_id()),
        invitations=await store.list_invitations(guard.org_id()),
        roles=ROLES if person.may(Action.MANAGE_MEMBERS) else ("admin", "member"),
        can_invite=person.may(Action.INVITE),
        can_manage=person.may(Action.MANAGE_MEMBERS),
        **context,
    )


@bp.get("/members")
@guard.signed_in()
async def members() -> Any:
    return await members_page()


@bp.post("/members/invite")
@guard.signed_in(Action.INVITE)
async def invite() -> Any:
    form = await guard.posted()
    person = guard.current()
    try:
        guard.check_form(form)
        row = await services().people.invite(
            guard.org_id(),
            person.org_name or "",
            {"user_id": person.user_id, "email": person.email, "role": person.role},
            form.get("email"),
            form.get("role"),
        )
    except guard.StaleForm:
        return await members_page(403, form_error=STALE_FORM, values=form_values(form))
    except InvalidInput as exc:
        return await members_page(422, errors=exc.details or {}, values=form_values(form))
    except (Conflict, LimitExceeded) as exc:
        message = exc.message if isinstance(exc, LimitExceeded) else str(exc)
        return await members_page(409, errors={"email": [message]}, values=form_values(form))
    audit("POST /members/invite", row["id"])
    return to("/members", "invited")


@bp.post("/invitations/<invitation_id>/revoke")
@guard.signed_in(Action.INVITE)
async def revoke_invitation(invitation_id: str) -> Any:
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await members_page(403, form_error=STALE_FORM)
    row = await services().store.revoke_invitation(guard.org_id(), page_id(invitation_id))
    audit("DELETE /invitations/{invitation_id}", row["id"])
    return to("/members", "invitation_revoked")


@bp.post("/members/<user_id>/role")
@guard.signed_in(Action.MANAGE_MEMBERS)
async def change_role(user_id: str) -> Any:
    member = page_id(user_id)
    form = await guard.posted()
    try:
        guard.check_form(form)
        role = clean_role(form.get("role"))
        await services().store.get_member(guard.org_id(), member)  # 404 before anything
        await services().store.set_member_role(guard.org_id(), member, role)
    except guard.StaleForm:
        return await members_page(403, form_error=STALE_FORM)
    except InvalidInput as exc:
        return await members_page(422, errors=exc.details or {})
    except Conflict as exc:
        return await members_page(409, form_error=str(exc))
    audit("PATCH /members/{user_id}/role", member)
    return to("/members", "role_changed")


@bp.post("/members/<user_id>/remove")
@guard.signed_in(Action.MANAGE_MEMBERS)
async def remove(user_id: str) -> Any:
    member = page_id(user_id)
    try:
        await guard.read_form()
        await services().store.remove_member(guard.org_id(), member)
    except guard.StaleForm:
        return await members_page(403, form_error=STALE_FORM)
    except Conflict as exc:
        return await members_page(409, form_error=str(exc))
    audit("DELETE /members/{user_id}", member)
    if member == guard.current().user_id:
        return to("/login", "left")
    return to("/members", "member_removed")


@bp.post("/members/leave")
@guard.signed_in()
async def leave() -> Any:
    person = guard.current()
    try:
        await guard.read_form()
        await services().store.remove_member(guard.org_id(), person.user_id)
    except guard.StaleForm:
        return await members_page(403, form_error=STALE_FORM)
    except Conflict as exc:
        return await members_page(409, form_error=str(exc))
    audit("DELETE /members/{user_id}", person.user_id)
    return to("/login", "left")


@bp.get("/invite/<token>")
async def invitation(token: str) -> Any:
    found = await services().people.open_invitation(token) if len(token) <= 100 else None
    if found is None:
        return await page("link_gone.html", 410, what="invitation")
    return await page("accept.html", invitation=found, token=token)


@bp.post("/invite/<token>")
async def accept(token: str) -> Any:
    try:
        await guard.read_form()
    except guard.StaleForm:
        found = await services().people.open_invitation(token) if len(token) <= 100 else None
        if found is None:
            return await page("link_gone.html", 410, what="invitation")
        return await page("accept.html", 403, invitation=found, token=token, form_error=STALE_FORM)
    accepted = await services().people.accept_invitation(token) if len(token) <= 100 else None
    if accepted is None:
        return await page("link_gone.html", 410, what="invitation")
    session, _ = accepted
    response = to("/", "joined")
    guard.set_session_cookie(response, session.token, SESSION_TTL_S)
    g.person = None  # the cookie of whoever was signed in here is replaced
    return response
