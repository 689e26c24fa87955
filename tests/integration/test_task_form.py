"""Creating, editing and cloning a task in the browser: the API's rules and messages through
the domain, shown beside the field; the cron helper."""

from __future__ import annotations

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.dashboard import Visitor, sign_in
from tests.helpers.factories import make_org

OWNER = "owner@acme.test"
BASE = {"method": "POST", "timezone": "UTC", "retry_attempts": "3", "timeout_ms": "30000"}


async def signed_in(store: Store) -> Visitor:
    v = Visitor(create_app(store, Settings(), SystemClock()).test_client())
    await sign_in(store, v, OWNER)
    return v


async def test_a_cron_task_is_created_edited_and_cloned(store: Store) -> None:
    org, _ = await make_org(store, tier="pro")
    v = await signed_in(store)
    await v.get("/tasks/new")
    page = await v.post(
        "/tasks/new",
        BASE | {"name": "weekday digest", "url": "https://example.com/digest",
                "schedule": "cron", "cron": "0 9 * * 1-5", "timezone": "Europe/Amsterdam",
                "headers": "Content-Type: application/json\nX-Team: growth", "body": '{"a":1}'},
    )  # fmt: skip
    assert page.status == 303 and page.location and page.location.startswith("/tasks/")
    task_id = page.location.rsplit("/", 1)[1]
    [task] = await store.list_tasks(
        org, schedule_type="cron", queue=None, status=None, limit=5, offset=0
    )
    assert str(task["id"]) == task_id
    assert task["cron_expression"] == "0 9 * * 1-5" and task["timezone"] == "Europe/Amsterdam"
    assert task["headers"] == {"Content-Type": "application/json", "X-Team": "growth"}
    assert task["retry_attempts"] == 3
    edit = await v.get(f"/tasks/{task_id}/edit")
    assert 'value="weekday digest"' in edit.text and "X-Team: growth" in edit.text
    values = BASE | {"name": "weekday digest", "url": "https://example.com/digest2",
                     "schedule": "cron", "cron": "30 8 * * 1-5", "timezone": "Europe/Amsterdam",
                     "headers": "", "body": ""}  # fmt: skip
    saved = await v.post(f"/tasks/{task_id}/edit", values)  # "enabled" unchecked
    assert saved.status == 303
    task = await store.get_task(org, task["id"])
    assert (
        task["url"] == "https://example.com/digest2" and task["cron_expression"] == "30 8 * * 1-5"
    )
    assert not task["enabled"] and task["headers"] == {} and task["body"] is None
    clone = await v.get(f"/tasks/{task_id}/clone")
    assert 'value="weekday digest (copy)"' in clone.text and 'action="/tasks/new"' in clone.text
    entries = await store.search_audit_log(
        org, action="tasks", actor_type="user", limit=5, offset=0
    )
    assert [e["action"] for e in entries] == ["PATCH /api/v1/tasks/{task_id}", "POST /api/v1/tasks"]


async def test_the_apis_messages_come_back_beside_the_field(store: Store) -> None:
    org, _ = await make_org(store, tier="free")
    v = await signed_in(store)
    cases = [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://example.com/x", "schedule": "cron", "cron": "61 * * * *"}, "cron"),
        ({"url": "https://example.com/x", "schedule": "cron", "cron": "*/5 * * * *"}, "cron"),
        ({"url": "https://example.com/x", "retry_attempts": "many"}, "retry_attempts"),
        ({"url": "https://example.com/x", "headers": "no colon here"}, "headers"),
        ({"url": "https://example.com/x", "timezone": "Mars/Olympus", "schedule": "cron",
          "cron": "0 9 * * *"}, "timezone"),
    ]  # fmt: skip
    for data, field in cases:
        await v.get("/tasks/new")
        page = await v.post("/tasks/new", BASE | data)
        assert page.status == 422, (data, page.status)
        assert f'id="e-{field}"' in page.text, (field, page.text[:3000])
        assert f'value="{data["url"]}"' in page.text  # values kept
    assert (
        await store.list_tasks(org, schedule_type=None, queue=None, status=None, limit=5, offset=0)
        == []
    )


async def test_the_cron_helper_previews_runs_in_the_time_zone_and_says_it_in_words(
    store: Store,
) -> None:
    await make_org(store)
    v = await signed_in(store)
    answer = await v.client.get("/cron-preview?expression=0+9+*+*+1-5&timezone=Europe/Amsterdam")
    data = await answer.get_json()
    assert answer.status_code == 200 and len(data["next_runs"]) == 5
    assert all(run.endswith(("T08:00:00.000Z", "T07:00:00.000Z")) for run in data["next_runs"])
    assert "Monday through Friday" in data["description"]
    bad = await v.client.get("/cron-preview?expression=99+*+*+*+*")
    assert bad.status_code == 422 and (await bad.get_json())["error"]
