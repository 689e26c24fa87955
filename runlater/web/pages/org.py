"""The organization: home, settings (name, webhook secret, plan and usage), switching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from quart import Blueprint, Response, g

from runlater.apikeys import new_webhook_secret
from runlater.domain.people import Action, clean_org_name
from runlater.domain.stats import series, summarize
from runlater.errors import Conflict, InvalidInput
from runlater.plans import PLANS
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.render import STALE_FORM, audit, form_values, page, to
from runlater.web.pages.signin import sign_in_page

bp = Blueprint("org", __name__)


@bp.get("/")
async def home() -> Any:
    if g.person is None:
        return await sign_in_page()
    if g.person.org_id is None:
        return to("/organizations")
    return await home_page()


HOURS = 7 * 24


async def home_page() -> Response:
    """Runs, success rate and durations of the last 24 h and 7 d, from the per-minute
    aggregate; this month's usage; the last failures."""
    store = services().store
    org = guard.org_id()
    hours = await store.execution_hours(org, HOURS)
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now_hour - timedelta(hours=HOURS - 1)
    return await page(
        "home.html",
        day=summarize(hours, now_hour - timedelta(hours=23)),
        week=summarize(hours, start),
        chart=series(hours, start, HOURS),
        usage=await store.get_organization_usage(org),
        failures=(await store.list_failures(org, 5)),
    )


async def settings_page(status: int = 200, **context: Any) -> Response:
    usage = await services().store.get_organization_usage(guard.org_id())
    plan = PLANS.get(usage["tier"])
    members = await services().store.list_members(guard.org_id())
    invitations = await services().store.list_invitations(guard.org_id())
    return await page(
        "settings.html",
        status,
        usage=usage,
        plan=plan,
        members_used=len(members) + len(invitations),
        can_manage_work=guard.current().may(Action.MANAGE_WORK),
        can_manage_plan=guard.current().may(Action.MANAGE_PLAN),
        qstash_keys=await services().store.qstash_signing_keys(guard.org_id()),
        **context,
    )


@bp.get("/settings")
@guard.signed_in()
async def settings() -> Any:
    return await settings_page()


@bp.post("/settings/name")
@guard.signed_in(Action.MANAGE_PLAN)
async def rename() -> Any:
    form = await guard.posted()
    try:
        guard.check_form(form)
        name = clean_org_name(form.get("name"))
        await services().store.rename_organization(guard.org_id(), name)
    except guard.StaleForm:
        return await settings_page(403, form_error=STALE_FORM, values=form_values(form))
    except InvalidInput as exc:
        return await settings_page(422, errors=exc.details or {}, values=form_values(form))
    except Conflict as exc:
        return await settings_page(409, errors={"name": [str(exc)]}, values=form_values(form))
    audit("PATCH /settings/name", guard.org_id())
    return to("/settings", "renamed")


@bp.post("/settings/webhook-secret/rotate")
@guard.signed_in(Action.MANAGE_WORK)
async def rotate() -> Any:
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await settings_page(403, form_error=STALE_FORM)
    await services().store.rotate_webhook_secret(guard.org_id(), new_webhook_secret())
    audit("POST /api/v1/org/webhook-secret/rotate")
    return to("/settings", "rotated")


@bp.post("/settings/qstash-keys/rotate")
@guard.signed_in(Action.MANAGE_WORK)
async def rotate_qstash_keys() -> Any:
    """As ``POST /v2/keys/rotate``: the next signing key becomes current, a new next key."""
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await settings_page(403, form_error=STALE_FORM)
    await services().store.rotate_qstash_signing_keys(guard.org_id())
    audit("POST /v2/keys/rotate")
    return to("/settings", "rotated")


@bp.post("/settings/upgrade")
@guard.signed_in(Action.MANAGE_PLAN)
async def upgrade() -> Any:
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await settings_page(403, form_error=STALE_FORM)
    await services().store.set_organization_tier(guard.org_id(), "pro")
    audit("POST /settings/upgrade", "pro")
    return to("/settings", "upgraded")


@bp.get("/organizations")
async def organizations() -> Any:
    if g.person is None:
        return to("/login")
    return await page("organizations.html")


@bp.post("/organizations/switch")
async def switch() -> Any:
    person = g.person
    if person is None:
        return to("/login")
    try:
        form = await guard.read_form()
    except guard.StaleForm:
        return await page("organizations.html", 403, form_error=STALE_FORM)
    try:
        org_id = UUID(form.get("organization_id", ""))
    except ValueError:
        return await page("not_found.html", 404)
    if not await services().people.switch_organization(person.session_token, org_id):
        return await page("not_found.html", 404)
    return to("/", "switched")
