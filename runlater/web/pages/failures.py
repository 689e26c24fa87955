"""Failures: the dead-letter queue — executions that failed for good — grouped by task and
reason, filtered by queue, URL and status code; retry or delete some or all shown, and watch
the retries run (the list is live). The API's ``/api/v1/dlq`` does the same with the same
service (``domain/dlq.py``)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from quart import Blueprint, Response, request

from runlater.domain.dlq import BulkOutcome, DeadLetterService
from runlater.domain.people import Action
from runlater.errors import InvalidInput, LimitExceeded, NotFound
from runlater.schemas.dlq import Selection, parse_filter
from runlater.store.dlq import DeadLetterFilter
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, page, to

bp = Blueprint("failures_page", __name__)

SHOWN = 200
MAX_SELECTED = 100  # the domain's bulk limit by ids
FILTERS = ("queue", "url", "status_code")


def group(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dead letters grouped by task and reason, in the order their newest member appears."""
    groups: OrderedDict[tuple[Any, str], dict[str, Any]] = OrderedDict()
    for row in rows:
        key = (row["task_id"], str(row["error_message"]))
        if key not in groups:
            groups[key] = {"task_name": row["task_name"], "url": row["url"],
                           "reason": key[1], "letters": []}  # fmt: skip
        groups[key]["letters"].append(row)
    return list(groups.values())


def _service() -> DeadLetterService:
    return DeadLetterService(services().store)


def _filters(values: dict[str, str]) -> tuple[DeadLetterFilter, dict[str, str]]:
    """The page's filter form (empty fields: any); its errors by field."""
    given = {k: values[k].strip() for k in FILTERS if values.get(k, "").strip()}
    try:
        return parse_filter(given), {}
    except InvalidInput as exc:
        errors = {k: "; ".join(v) for k, v in (exc.details or {}).items()}
        return DeadLetterFilter(), errors


async def failures_page(status: int = 200, **context: Any) -> Response:
    values = {k: request.args.get(k, "") for k in FILTERS}
    where, errors = _filters(values)
    found = await _service().list(guard.org_id(), where, limit=SHOWN)
    filtered = any(values.values())
    return await page(
        "failures.html",
        422 if errors and status == 200 else status,
        groups=group(found.rows),
        count=len(found.rows),
        more=found.has_more,
        filtered=filtered,
        values=values,
        errors=errors,
        retrying=await services().store.count_retries_in_flight(guard.org_id()),
        can_run=guard.current().may(Action.RUN),
        **context,
    )


@bp.get("/failures")
@guard.signed_in()
async def failures() -> Any:
    return await failures_page()


async def _selection() -> Selection | Response:
    """The letters a form names (checked, or all shown), or the page again with its error."""
    try:
        form = await guard.read_form()
    except guard.StaleForm:
        return await failures_page(403, form_error=STALE_FORM)
    field = "shown_id" if form.get("all") else "dead_letter_id"
    ids = list(dict.fromkeys(form.getlist(field)))
    if not ids:
        return await failures_page(422, form_error="Select at least one failure.")
    if len(ids) > MAX_SELECTED:
        return await failures_page(422, form_error=f"Select at most {MAX_SELECTED} at a time.")
    return Selection([page_id(raw) for raw in ids], DeadLetterFilter())


def _back() -> str:
    """The page with the filters it was sent from (``?back=``, as the tasks page does)."""
    back = request.args.get("back", "")
    return back if back.startswith("/failures") else "/failures"


def _acted(outcome: BulkOutcome) -> None:
    """A form that named only letters not (or no longer) in this organization's queue is not
    found, as a foreign id in a path is."""
    if not outcome.rows and outcome.not_found:
        raise NotFound("dead letter not found")


@bp.post("/failures/retry")
@guard.signed_in(Action.RUN)
async def retry() -> Any:
    selection = await _selection()
    if isinstance(selection, Response):
        return selection
    try:
        outcome = await _service().retry_many(guard.org_id(), selection)
    except LimitExceeded as exc:
        return await failures_page(409, form_error=f"Nothing was retried: {exc.message}")
    _acted(outcome)
    audit("POST /failures/retry", ",".join(str(r["dead_letter_id"]) for r in outcome.rows))
    return to(_back(), "retried")


@bp.post("/failures/delete")
@guard.signed_in(Action.RUN)
async def delete() -> Any:
    selection = await _selection()
    if isinstance(selection, Response):
        return selection
    outcome = await _service().delete_many(guard.org_id(), selection)
    _acted(outcome)
    audit("POST /failures/delete", ",".join(str(r["id"]) for r in outcome.rows))
    return to(_back(), "dead_letters_deleted")
