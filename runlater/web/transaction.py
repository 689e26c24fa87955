"""The web side of "one API request, one transaction" (``runlater/store/transaction.py``).

A mutating ``/api/v1`` call (POST, PUT, PATCH, DELETE), once authenticated, gets a request
transaction: every store call of the request runs in it. When the response is made, the app's
last ``after_request`` hook (:func:`end`) decides:

- a success (< 400): the changes are kept, the audit entry and the Idempotency-Key's answer
  are written with them, and the transaction commits — before the response goes out;
- a 4xx (but 429): nothing the request did is kept; with an Idempotency-Key the answer is
  kept (so a repeat gets it again);
- a 5xx or 429: everything is rolled back; the key stays free for a retry.

If the commit does not go through, the response becomes ``503 unavailable`` — and then the
request took no effect, or (when only the answer to the COMMIT was lost) a retry with the same
Idempotency-Key gets the original answer. Whatever else ends the request (an unhandled error,
a cancelled request) rolls the transaction back in :class:`RunlaterApp.handle_request`.
Work that must wait for the commit (a revoked key forgotten by this node's cache) is handed
to :func:`after_commit`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio
from quart import Response, g, request
from quart_trio import QuartTrio

from runlater.errors import StoreError, StoreUnavailable
from runlater.store import transaction as store_transaction
from runlater.store.transaction import KeyInProgress, KeyMismatch, KeyReplay, RequestTransaction
from runlater.web import idempotency
from runlater.web.context import services
from runlater.web.errors import error_response

log = logging.getLogger("runlater.web.transaction")

RETRY_AFTER_S = "5"


class RunlaterApp(QuartTrio):
    """The quart-trio app, with the guarantee that a request's transaction never outlives it."""

    async def handle_request(self, request: Any) -> Any:
        try:
            return await super().handle_request(request)
        finally:
            tx = store_transaction.current.get()
            if tx is not None:
                store_transaction.current.set(None)
                if not tx.ended:
                    with trio.CancelScope(shield=True):
                        await tx.rollback()


def start(key: store_transaction.IdempotencyKey | None = None) -> None:
    """Run this request's store calls in one transaction, ended by :func:`end` (the API's
    mutating calls, and the dashboard's form posts)."""
    g.after_commit = []
    store_transaction.current.set(services().store.request_transaction(key))


async def begin() -> None:
    """``before_request`` hook of the API blueprint, after authentication and rate limits."""
    g.idempotency_replayed = False
    g.after_commit = []
    if request.method not in idempotency.MUTATING or "org_id" not in g:
        return
    start(await idempotency.key_of_request())


def after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the request's changes are committed (at once without a
    transaction; never when they are rolled back)."""
    if store_transaction.current.get() is None:
        action()
    else:
        g.after_commit.append(action)


def unavailable() -> Response:
    return error_response(
        503,
        "unavailable",
        "the database is unavailable, try again",
        headers={"Retry-After": RETRY_AFTER_S},
    )


def key_error_response(exc: KeyInProgress | KeyMismatch | KeyReplay) -> Response:
    """The answer for a request whose Idempotency-Key is taken, used elsewhere, or answered."""
    if isinstance(exc, KeyReplay):
        return idempotency.replay(exc)
    error = idempotency.conflict() if isinstance(exc, KeyInProgress) else idempotency.mismatch()
    return error_response(error.status, error.code, error.message)


async def end(response: Response) -> Response:
    """App-level ``after_request`` hook (runs after the blueprints' hooks): commit or undo."""
    tx: RequestTransaction | None = store_transaction.current.get()
    if tx is None or tx.ended:
        return response
    status = response.status_code
    if status >= 500 or status == 429:
        await tx.rollback()
        return response
    keep = status < 400
    answer = await idempotency.answer_to_keep(response) if tx.key is not None else None
    if not keep and answer is None:
        await tx.rollback()
        return response
    try:
        await tx.commit(keep_changes=keep, answer=answer, audit=g.get("audit_entry"))
    except (KeyInProgress, KeyMismatch, KeyReplay) as exc:
        return key_error_response(exc)
    except StoreUnavailable as exc:
        log.warning(
            "request not committed: database unavailable method=%s path=%s error=%s",
            request.method,
            request.path,
            exc,
        )
        return unavailable()
    except StoreError as exc:
        log.error(
            "request not committed method=%s path=%s error=%s", request.method, request.path, exc
        )
        return error_response(500, "internal_error", "internal error")
    for action in g.get("after_commit", ()):
        action()
    return response
