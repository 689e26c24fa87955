"""API keys: the list, a new key (its secret shown once, on the answer to the form), revoke."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from runlater import apikeys
from runlater.domain.keys import clean_key_name
from runlater.domain.people import Action
from runlater.errors import InvalidInput
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, form_values, page, to
from runlater.web.transaction import after_commit

bp = Blueprint("keys", __name__)


async def keys_page(status: int = 200, **context: Any) -> Response:
    rows = await services().store.list_api_keys(guard.org_id(), limit=200, offset=0)
    return await page(
        "keys.html",
        status,
        keys=rows,
        can_manage=guard.current().may(Action.MANAGE_WORK),
        **context,
    )


@bp.get("/keys")
@guard.signed_in()
async def keys() -> Any:
    return await keys_page()


@bp.post("/keys")
@guard.signed_in(Action.MANAGE_WORK)
async def create() -> Any:
    form = await guard.posted()
    try:
        guard.check_form(form)
        name = clean_key_name(form.get("name", "").strip())
    except guard.StaleForm:
        return await keys_page(403, form_error=STALE_FORM, values=form_values(form))
    except InvalidInput as exc:
        return await keys_page(422, errors=exc.details or {}, values=form_values(form))
    key = apikeys.generate()
    row = await services().store.create_api_key(guard.org_id(), key.key_id, key.key_hash, name)
    audit("POST /api/v1/api-keys", row["id"], 201)
    # The secret is on this answer only (no redirect: a reload does not show it again).
    return await keys_page(201, created=key.full, created_name=name)


@bp.post("/keys/<key_id>/revoke")
@guard.signed_in(Action.MANAGE_WORK)
async def revoke(key_id: str) -> Any:
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await keys_page(403, form_error=STALE_FORM)
    row = await services().store.revoke_api_key(guard.org_id(), page_id(key_id))
    # This node forgets cached keys once the revocation commits (as the API's revoke does).
    after_commit(services().api_keys.clear)
    audit("DELETE /api/v1/api-keys/{api_key_id}", row["id"], 200)
    return to("/keys", "key_revoked")
