"""Organizations and teams through the pages: invitations, roles, removal, switching, limits,
and the audit entries each action leaves."""

from __future__ import annotations

from uuid import UUID

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.domain.people import token_hash
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.dashboard import Visitor, link_in, mails_to, sign_in
from tests.helpers.factories import make_org

OWNER = "owner@acme.test"


def visitor(store: Store) -> Visitor:
    return Visitor(create_app(store, Settings(), SystemClock()).test_client())


async def invite_and_join(store: Store, owner: Visitor, email: str, role: str) -> Visitor:
    page = await owner.submit("/members", "/members/invite", {"email": email, "role": role})
    assert page.status == 303, page.text[:3000]
    link = link_in((await mails_to(store, email))[-1]["text_body"])
    assert "/invite/" in link
    person = visitor(store)
    path = "/invite/" + link.rsplit("/", 1)[1]
    page = await person.get(path)
    assert page.status == 200 and "Join Acme" in page.text and role in page.text
    assert person.cookie("runlater_session") is None  # a GET joins no one
    page = await person.post(path)
    assert page.status == 303, page.text[:3000]
    return person


async def test_an_invited_person_joins_with_the_role_given(store: Store) -> None:
    org, _ = await make_org(store)
    owner = visitor(store)
    await sign_in(store, owner, OWNER)
    member = await invite_and_join(store, owner, "Mia@Acme.test", "member")
    home = await member.get("/")
    assert home.status == 200 and "mia@acme.test · member" in home.text
    members = await store.list_members(org)
    assert {(m["email"], m["role"]) for m in members} == {
        (OWNER, "owner"),
        ("mia@acme.test", "member"),
    }
    assert await store.list_invitations(org) == []
    # The invitation link is used up.
    used = link_in((await mails_to(store, "mia@acme.test"))[-1]["text_body"]).rsplit("/", 1)[1]
    assert (await visitor(store).get(f"/invite/{used}")).status == 410
    assert (await visitor(store).get("/invite/" + "x" * 43)).status == 410


async def test_a_member_may_read_but_not_manage_in_the_page_or_by_a_direct_post(
    store: Store,
) -> None:
    org, _ = await make_org(store)
    owner = visitor(store)
    owner_id = await sign_in(store, owner, OWNER)
    member = await invite_and_join(store, owner, "mia@acme.test", "member")
    keys = await member.get("/keys")
    assert keys.status == 200 and "Create API key" not in keys.text and "Revoke" not in keys.text
    before = await store.list_api_keys(org, limit=50, offset=0)
    for path, data in (
        ("/keys", {"name": "sneaky"}),
        (f"/keys/{before[0]['id']}/revoke", {}),
        ("/members/invite", {"email": "x@acme.test", "role": "member"}),
        (f"/members/{owner_id}/role", {"role": "member"}),
        (f"/members/{owner_id}/remove", {}),
        ("/settings/webhook-secret/rotate", {}),
        ("/settings/upgrade", {}),
        ("/settings/name", {"name": "Mine"}),
    ):
        page = await member.post(path, data, csrf=(await member.get("/")).csrf)
        assert page.status == 403, (path, page.status)
        assert "does not allow this" in page.text
    assert await store.list_api_keys(org, limit=50, offset=0) == before
    assert len(await store.list_members(org)) == 2
    settings = await member.get("/settings")
    assert "whsec_" not in settings.text and "Upgrade to Pro" not in settings.text


async def test_an_admin_manages_work_and_invites_but_not_members_or_the_plan(
    store: Store,
) -> None:
    org, _ = await make_org(store, tier="pro")
    owner = visitor(store)
    owner_id = await sign_in(store, owner, OWNER)
    admin = await invite_and_join(store, owner, "ada@acme.test", "admin")
    created = await admin.submit("/keys", "/keys", {"name": "ci"})
    assert created.status == 201 and "shown only this once" in created.text
    again = await admin.get("/keys")
    assert "shown only this once" not in again.text  # seen once
    assert (
        await admin.submit("/members", "/members/invite", {"email": "o@acme.test", "role": "owner"})
    ).status == 422
    assert (
        await admin.submit(
            "/members", "/members/invite", {"email": "m@acme.test", "role": "member"}
        )
    ).status == 303
    refused = await admin.submit("/members", f"/members/{owner_id}/role", {"role": "member"})
    assert refused.status == 403
    assert (await admin.submit("/settings", "/settings/upgrade")).status == 403
    rotated = await admin.submit("/settings", "/settings/webhook-secret/rotate")
    assert rotated.status == 303
    entries = await store.search_audit_log(org, action=None, actor_type="user", limit=50, offset=0)
    actions = {e["action"] for e in entries}
    assert {
        "POST /api/v1/api-keys",
        "POST /members/invite",
        "POST /api/v1/org/webhook-secret/rotate",
    } <= actions
    assert all(e["actor_email"] in (OWNER, "ada@acme.test") for e in entries)


async def test_a_removed_members_session_dies_at_once(store: Store) -> None:
    org, _ = await make_org(store)
    owner = visitor(store)
    await sign_in(store, owner, OWNER)
    member = await invite_and_join(store, owner, "mia@acme.test", "member")
    cookie = member.cookie("runlater_session") or ""
    assert (await member.get("/keys")).status == 200
    [mia] = [m for m in await store.list_members(org) if m["email"] == "mia@acme.test"]
    page = await owner.submit("/members", f"/members/{mia['user_id']}/remove")
    assert page.status == 303
    assert await store.session(token_hash(cookie), 60) is None
    assert (await member.get("/keys")).location == "/login"


async def test_the_last_owner_cannot_leave_but_a_member_can(store: Store) -> None:
    org, _ = await make_org(store)
    owner = visitor(store)
    await sign_in(store, owner, OWNER)
    page = await owner.submit("/members", "/members/leave")
    assert page.status == 409 and "at least one owner" in page.text
    member = await invite_and_join(store, owner, "mia@acme.test", "member")
    page = await member.submit("/members", "/members/leave")
    assert page.status == 303 and page.location == "/login"
    assert [m["email"] for m in await store.list_members(org)] == [OWNER]


async def test_the_free_plan_counts_pending_invitations_against_two_members(store: Store) -> None:
    org, _ = await make_org(store, tier="free")
    owner = visitor(store)
    await sign_in(store, owner, OWNER)
    first = await owner.submit(
        "/members", "/members/invite", {"email": "a@acme.test", "role": "member"}
    )
    assert first.status == 303
    second = await owner.submit(
        "/members", "/members/invite", {"email": "b@acme.test", "role": "member"}
    )
    assert second.status == 409
    assert "free plan allows 2 members" in second.text and 'value="b@acme.test"' in second.text
    assert len(await store.list_invitations(org)) == 1
    upgraded = await owner.submit("/settings", "/settings/upgrade")
    assert upgraded.status == 303
    assert (await owner.get("/settings")).text.count("Pro") >= 1
    third = await owner.submit(
        "/members", "/members/invite", {"email": "b@acme.test", "role": "member"}
    )
    assert third.status == 303


async def test_a_person_in_two_organizations_switches_between_them(store: Store) -> None:
    acme, _ = await make_org(store, "Acme")
    globex, _ = await make_org(store, "Globex")
    owner = visitor(store)
    await sign_in(store, owner, OWNER)
    globex_owner = visitor(store)
    await sign_in(store, globex_owner, "owner@globex.test")
    await invite_and_join_other(store, globex_owner, OWNER)
    home = await owner.get("/")
    assert "Acme" in home.text and "Globex" in home.text  # the switcher lists both
    page = await owner.submit("/", "/organizations/switch", {"organization_id": str(globex)})
    assert page.status == 303
    assert "<h1>Globex</h1>" in (await owner.get("/")).text
    page = await owner.submit("/", "/organizations/switch", {"organization_id": str(acme)})
    assert "<h1>Acme</h1>" in (await owner.get("/")).text


async def invite_and_join_other(store: Store, inviter: Visitor, email: str) -> None:
    page = await inviter.submit("/members", "/members/invite", {"email": email, "role": "admin"})
    assert page.status == 303, page.text[:2000]
    link = link_in((await mails_to(store, email))[-1]["text_body"])
    joiner = visitor(store)
    path = "/invite/" + link.rsplit("/", 1)[1]
    await joiner.get(path)
    assert (await joiner.post(path)).status == 303


async def test_bad_form_input_is_given_back_beside_the_field(store: Store) -> None:
    org, _ = await make_org(store, tier="pro")
    owner = visitor(store)
    await sign_in(store, owner, OWNER)
    cases = [
        (
            "/members",
            "/members/invite",
            {"email": "", "role": "member"},
            "email",
            "enter your e-mail address",
        ),
        (
            "/members",
            "/members/invite",
            {"email": "not-an-address", "role": "member"},
            "email",
            "name@example.com",
        ),
        (
            "/members",
            "/members/invite",
            {"email": "a\x00b@acme.test", "role": "member"},
            "email",
            "control characters",
        ),
        (
            "/members",
            "/members/invite",
            {"email": "a@acme.test", "role": "king"},
            "role",
            "owner, admin or member",
        ),
        ("/keys", "/keys", {"name": "x" * 201}, "name", "1 to 200 characters"),
        ("/settings", "/settings/name", {"name": "  "}, "name", "enter a name"),
        ("/settings", "/settings/name", {"name": "y" * 201}, "name", "at most 200"),
        ("/keys", "/keys", {"name": "z" * 20_000}, "name", "at most 10000"),
    ]
    for page_path, action, data, field, message in cases:
        page = await owner.submit(page_path, action, data)
        assert page.status == 422, (action, data, page.status)
        assert message in page.text, (action, message)
        assert f'id="e-{field}"' in page.text or field == "role"
    assert len(await store.list_api_keys(org, limit=50, offset=0)) == 1
    assert (await store.get_organization(org))["name"] == "Acme"
    assert await store.list_invitations(org) == []


async def test_page_actions_leave_audit_entries_with_the_person(store: Store) -> None:
    org, _ = await make_org(store, tier="pro")
    owner = visitor(store)
    owner_id = await sign_in(store, owner, OWNER)
    await owner.submit("/keys", "/keys", {"name": "deploy"})
    [key] = [k for k in await store.list_api_keys(org, limit=50, offset=0) if k["name"] == "deploy"]
    await owner.submit("/keys", f"/keys/{key['id']}/revoke")
    entries = await store.search_audit_log(
        org, action="api-keys", actor_type=None, limit=50, offset=0
    )
    assert [(e["action"], e["actor_type"], e["actor_id"], e["resource_id"]) for e in entries] == [
        ("DELETE /api/v1/api-keys/{api_key_id}", "user", owner_id, str(key["id"])),
        ("POST /api/v1/api-keys", "user", owner_id, str(key["id"])),
    ]
    page = await owner.get("/audit-log?action=api-keys&actor=user")
    assert page.status == 200 and page.text.count(OWNER) >= 3  # header + two entries
    assert "DELETE /api/v1/api-keys/{api_key_id}" in page.text


async def test_an_unknown_or_malformed_id_is_not_found(store: Store) -> None:
    await make_org(store)
    owner = visitor(store)
    await sign_in(store, owner, OWNER)
    for path in ("/keys/not-a-uuid/revoke", f"/keys/{UUID(int=1)}/revoke", "/members/x/remove"):
        page = await owner.submit("/keys", path)
        assert page.status == 404, path
