"""Failures: failed and timed-out executions across tasks, grouped by task and error; retry
some or all shown, and watch the retries run (the list is live)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from quart import Blueprint, Response

from runlater.domain.people import Action
from runlater.errors import Conflict, LimitExceeded
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, page, to

bp = Blueprint("failures_page", __name__)

SHOWN = 200
MAX_RETRY = 200


def _reason(row: dict[str, Any]) -> str:
    if row["error_message"]:
        return str(row["error_message"])
    if row["status_code"]:
        return f"HTTP {row['status_code']}"
    return str(row["status"])


def group(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failures grouped by task and reason, in the order their newest member appears."""
    groups: OrderedDict[tuple[Any, str], dict[str, Any]] = OrderedDict()
    for row in rows:
        key = (row["task_id"], _reason(row))
        if key not in groups:
            groups[key] = {"task_name": row["task_name"], "url": row["url"],
                           "reason": key[1], "executions": []}  # fmt: skip
        groups[key]["executions"].append(row)
    return list(groups.values())


async def failures_page(status: int = 200, **context: Any) -> Response:
    store = services().store
    rows = await store.list_failures(guard.org_id(), SHOWN)
    return await page(
        "failures.html",
        status,
        groups=group(rows),
        count=len(rows),
        retrying=await store.count_retries_in_flight(guard.org_id()),
        can_run=guard.current().may(Action.RUN),
        **context,
    )


@bp.get("/failures")
@guard.signed_in()
async def failures() -> Any:
    return await failures_page()


@bp.post("/failures/retry")
@guard.signed_in(Action.RUN)
async def retry() -> Any:
    try:
        form = await guard.read_form()
    except guard.StaleForm:
        return await failures_page(403, form_error=STALE_FORM)
    field = "shown_id" if form.get("all") else "execution_id"
    ids = list(dict.fromkeys(form.getlist(field)))
    if not ids:
        return await failures_page(422, form_error="Select at least one failure to retry.")
    if len(ids) > MAX_RETRY:
        return await failures_page(422, form_error=f"Retry at most {MAX_RETRY} at a time.")
    execution_ids = [page_id(raw) for raw in ids]
    try:
        for execution_id in execution_ids:
            await services().tasks.retry(guard.org_id(), execution_id)
    except (Conflict, LimitExceeded) as exc:
        message = exc.message if isinstance(exc, LimitExceeded) else str(exc)
        return await failures_page(409, form_error=f"Nothing was retried: {message}")
    audit("POST /failures/retry", ",".join(str(e) for e in execution_ids))
    return to("/failures", "retried")
