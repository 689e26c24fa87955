"""A task's page and an execution's page: what was sent and answered, the attempt chain, the
callback, the sparkline; and a member's buttons."""

from __future__ import annotations

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.dashboard import Visitor, sign_in
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org, once_task

OWNER = "owner@acme.test"


async def test_the_task_and_execution_pages_show_what_happened(
    store: Store, database_url: str
) -> None:
    org, _ = await make_org(store)
    row = await store.insert_task(
        org,
        once_task("https://example.com/hook", name="hook", callback_url="https://example.com/cb"),
        0,
    )
    first = row["execution_id"]
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "update executions set status = 'failed', started_at = now(),"
            " finished_at = now(), status_code = 503, duration_ms = 120,"
            " request_method = 'POST', request_url = 'https://example.com/hook',"
            " request_headers = '{\"x-runlater-attempt\": \"1\"}', request_body = 'ping',"
            " response_headers = '{\"retry-after\": \"5\"}', response_body = 'busy <b>now</b>'"
            " where id = $1",
            first,
        )
    retry = await store.retry_execution(org, first)
    v = Visitor(create_app(store, Settings(), SystemClock()).test_client())
    await sign_in(store, v, OWNER)
    task_page = await v.get(f"/tasks/{row['id']}")
    assert task_page.status == 200 and "<h1>hook</h1>" in task_page.text
    assert f'href="/executions/{first}"' in task_page.text
    assert f'data-execution="{retry["id"]}"' in task_page.text
    assert "<title>failed 120 ms</title>" in task_page.text  # the sparkline's bar
    assert 'value="run"' in task_page.text and 'value="disable"' in task_page.text
    page = await v.get(f"/executions/{first}")
    assert page.status == 200
    assert "POST https://example.com/hook" in page.text and "x-runlater-attempt: 1" in page.text
    assert "busy &lt;b&gt;now&lt;/b&gt;" in page.text  # the body is shown as text, escaped
    assert "retry-after: 5" in page.text and "HTTP 503" in page.text
    assert page.text.count("attempt 1") >= 1 and "attempt 2" in page.text  # the chain
    # Its outcome was written by hand here, so no callback row was made for it.
    assert "No callback sent yet" in page.text and "https://example.com/cb" in page.text
    assert (await v.get("/executions/00000000-0000-0000-0000-000000000000")).status == 404
    assert (await v.get("/tasks/not-a-task")).status == 404
