"""The dashboard: server-rendered pages (Jinja through Quart) for people signed in by e-mail.

Every page works without JavaScript. ``install`` mounts the pages at the root, next to the
API under ``/api/v1``; they share the store, the services and the audit log with the API, and
a page's POST runs in one transaction with its audit entry, as an API call does
(``web/transaction.py``).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart, g, request

from runlater.errors import NotFound, StoreUnavailable, TransientConflict
from runlater.web import transaction
from runlater.web.pages import (
    alerts,
    audit,
    detail,
    endpoints,
    failures,
    guard,
    keys,
    members,
    monitors,
    org,
    queues,
    signin,
    task_form,
    tasks,
    uptime,
)
from runlater.web.pages.limits import SignInLimits
from runlater.web.pages.render import page
from runlater.web.ratelimit import Seconds


async def _begin() -> None:
    """A signed-in person's POST runs in one transaction with its audit entry."""
    g.after_commit = []
    person = g.get("person")
    if request.method == "POST" and person is not None and person.org_id is not None:
        transaction.start()


def install(app: Quart, now: Seconds) -> None:
    """Mount the pages; ``now`` is the rate limits' clock (the API's)."""
    app.config[signin.LIMITS_KEY] = SignInLimits.create(now)
    bp = Blueprint(
        "pages",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/assets",
    )
    bp.before_request(guard.same_origin)
    bp.before_request(guard.load_person)
    bp.before_request(_begin)
    pages = (
        signin, org, members, keys, audit, task_form, tasks, queues, failures, detail, monitors,
        alerts, uptime, endpoints,
    )  # fmt: skip
    for child in (module.bp for module in pages):
        bp.register_blueprint(child)

    @bp.errorhandler(guard.Refused)
    async def refused(exc: guard.Refused) -> Any:
        return await page("refused.html", 403, message=exc.message)

    @bp.errorhandler(NotFound)
    async def not_found(exc: NotFound) -> Any:
        return await page("not_found.html", 404)

    @bp.errorhandler(StoreUnavailable)
    @bp.errorhandler(TransientConflict)
    async def unavailable(exc: Exception) -> Any:
        response = await page("unavailable.html", 503)
        response.headers["Retry-After"] = "5"
        return response

    app.register_blueprint(bp)
