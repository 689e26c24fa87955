"""The Failures page as the dead-letter queue: filters, delete selected or all shown, and
another organization's letters (404)."""

from __future__ import annotations

from runlater.store.postgres import Store
from tests.helpers.dashboard import sign_in
from tests.helpers.factories import make_org
from tests.integration.test_failures_page import OWNER, failed, letter, visitor


async def test_the_page_filters_and_deletes(store: Store, database_url: str) -> None:
    org, _ = await make_org(store)
    one = await failed(store, database_url, org, "sync-a", "connection refused")
    two = await failed(store, database_url, org, "sync-b", "HTTP 500")
    v = visitor(store)
    await sign_in(store, v, OWNER)
    page = await v.get("/failures?url=sync-b")
    assert "1 failed or timed-out execution at the end of their retries matching" in page.text
    assert str(two) in page.text and str(one) not in page.text
    assert "No failures match" in (await v.get("/failures?url=nothing-like-it")).text
    refused = await v.get("/failures?status_code=abc")
    assert refused.status == 422 and "HTTP status code" in refused.text
    deleted = await v.post(
        "/failures/delete?back=/failures%3Furl%3Dsync",
        {"dead_letter_id": str(await letter(database_url, one))},
    )
    assert deleted.status == 303 and deleted.headers["Location"] == "/failures?url=sync"
    page = await v.get("/failures")
    assert str(one) not in page.text and str(two) in page.text
    assert "deleted from the dead-letter queue" in page.text
    everything = await v.post(
        "/failures/delete", {"all": "1", "shown_id": str(await letter(database_url, two))}
    )
    assert everything.status == 303
    assert "No failures." in (await v.get("/failures")).text
    # The executions stay in the history.
    assert (await store.get_execution(org, one))["status"] == "failed"


async def test_another_organizations_letter_is_not_found(store: Store, database_url: str) -> None:
    org, _ = await make_org(store)
    other, _ = await make_org(store, "Globex")
    theirs = await letter(database_url, await failed(store, database_url, other, "x", "HTTP 500"))
    v = visitor(store)
    await sign_in(store, v, OWNER)
    await v.get("/failures")
    for action in ("retry", "delete"):
        answer = await v.post(f"/failures/{action}", {"dead_letter_id": str(theirs)})
        assert answer.status == 404, action
    assert (await store.get_dead_letter(other, theirs))["id"] == theirs
    assert org != other
