"""Sign-in by e-mailed link, sign-up (when open), sign-out (``docs/api.md``, "Web sign-in").

``POST /login`` answers the same page whether or not the address has an account. A link
``/login/{token}`` shown by GET signs no one in (mail scanners follow links): its button
POSTs back, and that POST uses the token, once, within 15 minutes.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, g

from runlater.domain.people import SESSION_TTL_S
from runlater.errors import Conflict, InvalidInput
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.limits import SignInLimits
from runlater.web.pages.render import STALE_FORM, form_values, page, to

bp = Blueprint("signin", __name__)

TOKEN_MAX = 100


LIMITS_KEY = "RUNLATER_SIGN_IN_LIMITS"


def limits() -> SignInLimits:
    found: SignInLimits = current_app.config[LIMITS_KEY]
    return found


async def too_many(wait: str, what: str, template: str, form: Any) -> Response:
    response = await page(
        template,
        429,
        form_error=f"Too many {what} asked for; try again in {wait} seconds.",
        values=form_values(form),
    )
    response.headers["Retry-After"] = wait
    return response


async def sign_in_page(status: int = 200, **context: Any) -> Response:
    return await page("login.html", status, **context)


@bp.get("/login")
async def login_form() -> Any:
    if g.person is not None:
        return to("/")
    return await sign_in_page()


@bp.post("/login")
async def login() -> Any:
    form = await guard.posted()
    if (wait := limits().wait_s(form.get("email", ""))) is not None:
        return await too_many(wait, "sign-in links", "login.html", form)
    try:
        guard.check_form(form)
        await services().people.request_sign_in(form.get("email"))
    except guard.StaleForm:
        return await sign_in_page(403, form_error=STALE_FORM, values=form_values(form))
    except InvalidInput as exc:
        values = form_values(form)
        return await sign_in_page(422, errors=exc.details or {}, values=values)
    return await page("check_email.html", email=form.get("email", "").strip().lower())


async def _link_gone() -> Response:
    return await page("link_gone.html", 410)


@bp.get("/login/<token>")
async def confirm_form(token: str) -> Any:
    if len(token) > TOKEN_MAX or not await services().people.link_usable(token):
        return await _link_gone()
    return await page("confirm.html", token=token)


@bp.post("/login/<token>")
async def confirm(token: str) -> Any:
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await page("confirm.html", 403, token=token, form_error=STALE_FORM)
    if len(token) > TOKEN_MAX:
        return await _link_gone()
    session = await services().people.sign_in(token)
    if session is None:
        return await _link_gone()
    response = to("/", "signed_in")
    guard.set_session_cookie(response, session.token, SESSION_TTL_S)
    return response


@bp.post("/logout")
async def logout() -> Any:
    try:
        await guard.read_form()
    except guard.StaleForm:
        return to("/")  # nothing to keep: the next page has a fresh form
    person = g.person
    if person is not None:
        await services().people.sign_out(person.session_token)
    response = to("/login", "signed_out")
    guard.clear_session_cookie(response)
    return response


@bp.get("/signup")
async def signup_form() -> Any:
    if services().settings.signup != "open":
        return await page("signup_closed.html", 404)
    return await page("signup.html")


@bp.post("/signup")
async def signup() -> Any:
    if services().settings.signup != "open":
        return await page("signup_closed.html", 404)
    form = await guard.posted()
    if (wait := limits().wait_s(form.get("email", ""))) is not None:
        return await too_many(wait, "sign-ups", "signup.html", form)
    try:
        guard.check_form(form)
        await services().people.sign_up(form.get("email"), form.get("organization"))
    except guard.StaleForm:
        return await page("signup.html", 403, form_error=STALE_FORM, values=form_values(form))
    except InvalidInput as exc:
        return await page("signup.html", 422, errors=exc.details or {}, values=form_values(form))
    except Conflict as exc:
        return await page(
            "signup.html", 409, errors={"organization": [str(exc)]}, values=form_values(form)
        )
    return await page("check_email.html", email=form.get("email", "").strip().lower())
