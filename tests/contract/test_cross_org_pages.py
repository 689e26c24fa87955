"""A session of one organization's owner reaches nothing of another organization through the
dashboard: every page route with an id, taken from the app's route map, is tried with the
other organization's ids (as ``test_cross_org.py`` does for the API)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.domain.inbound import draft_endpoint
from runlater.domain.monitors import draft_monitor
from runlater.store.inbound import InboundRequest
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.dashboard import Visitor, sign_in
from tests.helpers.factories import make_org, once_task

# Routes whose path holds a secret token, not an organization's id (their own tests cover
# them), and the static assets.
NOT_ORG_SCOPED = {"/login/<token>", "/invite/<token>", "/assets/<path:filename>"}
FORM_VALUES = {"role": "member", "name": "stolen", "email": "x@evil.test"}


async def snapshot(store: Store, org: Any) -> dict[str, Any]:
    return {
        "members": await store.list_members(org),
        "invitations": await store.list_invitations(org),
        "keys": await store.list_api_keys(org, limit=100, offset=0),
        "org": await store.get_organization(org),
        "tasks": await store.list_tasks(
            org, schedule_type=None, queue=None, status=None, limit=100, offset=0
        ),
        "queues": await store.list_queues(org),
    }


async def test_every_page_route_with_an_id_answers_404_for_another_orgs_ids(store: Store) -> None:
    await make_org(store, "Acme")
    globex, _ = await make_org(store, "Globex", tier="pro")
    app = create_app(store, Settings(), SystemClock())
    # Globex: an owner, an admin (by invitation), an open invitation, a second key.
    theirs = Visitor(app.test_client())
    globex_owner = await sign_in(store, theirs, "owner@globex.test")
    await theirs.submit("/keys", "/keys", {"name": "theirs"})
    await theirs.submit("/members", "/members/invite", {"email": "z@globex.test", "role": "admin"})
    [invitation] = await store.list_invitations(globex)
    [key, *_] = await store.list_api_keys(globex, limit=10, offset=0)
    await store.set_queue_paused(globex, "theirs", False)
    task = await store.insert_task(globex, once_task("https://example.com/x"), 3600)
    now = datetime.now(UTC)
    monitor = await store.insert_monitor(
        globex, draft_monitor({"name": "theirs", "interval_seconds": 3600}, now)
    )
    channel = await store.insert_channel(
        globex,
        {
            "name": "theirs",
            "type": "email",
            "target": "owners",
            "events": ["monitor.down"],
            "enabled": True,
        },
    )
    window = await store.insert_window(
        globex,
        {
            "resource_type": None,
            "resource_id": None,
            "starts_at": now,
            "ends_at": now + timedelta(hours=1),
            "cron": None,
            "timezone": "UTC",
            "duration_minutes": None,
            "reason": "theirs",
        },
    )
    check = await store.insert_uptime_check(
        globex,
        {
            "name": "theirs",
            "url": "https://example.com/",
            "method": "GET",
            "interval_seconds": 60,
            "timeout_ms": 10000,
            "expected_status_codes": None,
            "keyword": None,
            "failure_threshold": 2,
            "status": "new",
            "enabled": True,
            "badge_token": "theirs-badge-token-0123456789",
            "notify_on_failure": True,
            "notify_on_recovery": True,
            "on_failure_url": None,
            "on_recovery_url": None,
            "alert_after": 1,
            "next_check_at": now.isoformat(),
        },
    )
    endpoint = await store.insert_endpoint(globex, draft_endpoint({"name": "theirs"}))
    received = await store.receive_inbound_event(
        InboundRequest(endpoint["slug"], "POST", "", "", {}, b"{}", True, None, now), None, None
    )
    assert received is not None
    ids = {
        "endpoint_id": endpoint["id"],
        "event_id": received["event_id"],
        "check_id": check["id"],
        "monitor_id": monitor["id"],
        "channel_id": channel["id"],
        "window_id": window["id"],
        "user_id": globex_owner,
        "key_id": key["id"],
        "invitation_id": invitation["id"],
        "name": "theirs",
        "task_id": task["id"],
        "execution_id": task["execution_id"],
    }
    before = await snapshot(store, globex)

    mine = Visitor(app.test_client())
    await sign_in(store, mine, "owner@acme.test")
    tried = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("pages.") or not rule.arguments:
            continue
        if rule.rule in NOT_ORG_SCOPED:
            continue
        assert rule.arguments <= set(ids), f"a page route with an id this test lacks: {rule}"
        path = re.sub(r"<(?:[^:<>]*:)?([^<>]+)>", lambda m: str(ids[m.group(1)]), rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method == "GET":
                page = await mine.get(path)
            else:
                page = await mine.post(path, FORM_VALUES, csrf=(await mine.get("/")).csrf)
            assert page.status == 404, (method, path, page.status)
            tried.append((method, rule.rule))
    assert len(tried) >= 4, tried
    # Ids in a form: a bulk action on another organization's task, and switching to an
    # organization one is not a member of.
    for action in ("enable", "disable", "run", "delete"):
        page = await mine.post(
            "/tasks/bulk",
            {"action": action, "task_id": str(task["id"])},
            csrf=(await mine.get("/tasks")).csrf,
        )
        assert page.status == 404, (action, page.status)
    for field in ("dead_letter_id", "shown_id"):
        page = await mine.post(
            "/failures/retry",
            {field: str(task["execution_id"]), "all": "1" if field == "shown_id" else ""},
            csrf=(await mine.get("/failures")).csrf,
        )
        assert page.status == 404, (field, page.status)
    page = await mine.post(
        "/organizations/switch", {"organization_id": str(globex)}, csrf=(await mine.get("/")).csrf
    )
    assert page.status == 404
    assert "<h1>Acme</h1>" in (await mine.get("/")).text
    assert await snapshot(store, globex) == before
