"""The tasks and queues pages: search and filters in the URL, bulk actions through the domain,
roles, and pausing a queue."""

from __future__ import annotations

from uuid import UUID

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.dashboard import Visitor, sign_in
from tests.helpers.factories import make_org, once_task
from tests.integration.test_members import invite_and_join

OWNER = "owner@acme.test"


def visitor(store: Store) -> Visitor:
    return Visitor(create_app(store, Settings(), SystemClock()).test_client())


async def tasks_of(store: Store, org: UUID) -> dict[str, dict]:
    rows = await store.list_tasks(
        org, schedule_type=None, queue=None, status=None, limit=500, offset=0
    )
    return {r["name"]: r for r in rows}


async def seed(store: Store, org: UUID) -> None:
    for name, url, queue in (
        ("nightly report", "https://example.com/report", None),
        ("invoice 1", "https://billing.example.com/a", "invoices"),
        ("invoice 2", "https://billing.example.com/b", "invoices"),
    ):
        await store.insert_task(org, once_task(url, name=name, queue=queue), 3600)


async def test_search_and_filters_live_in_the_url(store: Store) -> None:
    org, _ = await make_org(store)
    await seed(store, org)
    v = visitor(store)
    await sign_in(store, v, OWNER)
    page = await v.get("/tasks")
    assert page.status == 200 and "3 tasks." in page.text
    found = await v.get("/tasks?q=BILLING")  # a piece of the URL, any case
    assert "2 tasks match the filter." in found.text and "nightly report" not in found.text
    queued = await v.get("/tasks?queue=invoices&q=2")
    assert "1 task match the filter." in queued.text and "invoice 2" in queued.text
    assert 'value="invoices"' in queued.text  # the filter form shows what the URL holds
    none = await v.get("/tasks?enabled=no")
    assert "No tasks match the filter." in none.text
    odd = await v.get("/tasks?type=weird&status=%00&offset=x")
    assert odd.status == 200 and "3 tasks." in odd.text  # unknown values are ignored


async def test_bulk_actions_run_through_the_domain_in_one_transaction(store: Store) -> None:
    org, _ = await make_org(store)
    await seed(store, org)
    tasks = await tasks_of(store, org)
    ids = [str(tasks["invoice 1"]["id"]), str(tasks["invoice 2"]["id"])]
    v = visitor(store)
    await sign_in(store, v, OWNER)
    await v.get("/tasks")
    page = await v.post("/tasks/bulk", {"action": "disable", "task_id": ids[0]})
    assert page.status == 303
    response = await v.client.post(
        "/tasks/bulk?back=/tasks%3Fqueue%3Dinvoices",
        form=[
            ("csrf_token", (await v.get("/tasks")).csrf),
            ("action", "disable"),
            ("task_id", ids[0]),
            ("task_id", ids[1]),
        ],
        headers={"Origin": v.origin},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/tasks?queue=invoices"
    assert "The selected tasks are disabled." in (await v.get("/tasks?queue=invoices")).text
    after = await tasks_of(store, org)
    assert not after["invoice 1"]["enabled"] and not after["invoice 2"]["enabled"]
    assert after["nightly report"]["enabled"]
    # Run now: a new execution each; delete: gone from the list.
    await v.get("/tasks")
    assert (await v.post("/tasks/bulk", {"action": "run", "task_id": ids[0]})).status == 303
    assert "The task runs now." in (await v.get("/tasks")).text  # one task: said of one
    executions = await store.list_task_executions(
        org, UUID(ids[0]), status=None, limit=10, offset=0
    )
    assert len(executions) == 2
    await v.get("/tasks")
    assert (await v.post("/tasks/bulk", {"action": "delete", "task_id": ids[1]})).status == 303
    assert "invoice 2" not in await tasks_of(store, org)
    # A malformed id in the selection: nothing of the selection is done.
    await v.get("/tasks")
    response = await v.client.post(
        "/tasks/bulk",
        form=[
            ("csrf_token", (await v.get("/tasks")).csrf),
            ("action", "enable"),
            ("task_id", ids[0]),
            ("task_id", "nope"),
        ],
        headers={"Origin": v.origin},
    )
    assert response.status_code == 404
    assert not (await tasks_of(store, org))["invoice 1"]["enabled"]
    entries = await store.search_audit_log(
        org, action="bulk", actor_type="user", limit=10, offset=0
    )
    assert [e["action"] for e in entries] == [
        "POST /tasks/bulk delete",
        "POST /tasks/bulk run",
        "POST /tasks/bulk disable",
        "POST /tasks/bulk disable",
    ]


async def test_a_member_may_run_now_but_not_disable_or_delete(store: Store) -> None:
    org, _ = await make_org(store)
    await seed(store, org)
    task_id = str((await tasks_of(store, org))["nightly report"]["id"])
    owner = visitor(store)
    await sign_in(store, owner, OWNER)
    member = await invite_and_join(store, owner, "mia@acme.test", "member")
    page = await member.get("/tasks")
    assert 'value="run"' in page.text and 'value="delete"' not in page.text
    for action in ("disable", "delete", "enable"):
        refused = await member.post(
            "/tasks/bulk", {"action": action, "task_id": task_id}, csrf=page.csrf
        )
        assert refused.status == 403, action
    assert (
        await member.post("/tasks/bulk", {"action": "run", "task_id": task_id}, csrf=page.csrf)
    ).status == 303
    assert (await tasks_of(store, org))["nightly report"]["enabled"]


async def test_the_queues_page_shows_depth_and_pauses_and_resumes(store: Store) -> None:
    org, _ = await make_org(store)
    await seed(store, org)
    v = visitor(store)
    await sign_in(store, v, OWNER)
    page = await v.get("/queues")
    assert page.status == 200 and 'data-queue="invoices"' in page.text
    row = page.text.split('data-queue="invoices"', 1)[1].split("</tr>", 1)[0]
    assert "<td>2</td>" in row and "running" in row  # two pending, not paused
    paused = await v.post("/queues/invoices/pause")
    assert paused.status == 303
    [queue] = await store.list_queues(org)
    assert queue["paused"]
    page = await v.get("/queues")
    assert "Resume invoices" in page.text
    assert (await v.post("/queues/invoices/resume")).status == 303
    assert not (await store.list_queues(org))[0]["paused"]
    assert (await v.post("/queues/unknown/pause", csrf=(await v.get("/queues")).csrf)).status == 404
