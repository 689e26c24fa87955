"""Sign-in by e-mailed link, sessions, CSRF and Origin checks — through the real app and store.

Each security test names the mechanism it stands for; without it, the test fails.
"""

from __future__ import annotations

from datetime import UTC, datetime

import trio

from runlater.actors.janitor import Janitor
from runlater.clock import Clock, ManualClock, SystemClock
from runlater.config import Settings
from runlater.domain.people import token_hash
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.dashboard import BASE_URL, Visitor, link_in, mails_to, sign_in
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org

OWNER = "owner@acme.test"


def visitor(store: Store, settings: Settings | None = None, clock: Clock | None = None) -> Visitor:
    app = create_app(store, settings or Settings(), clock or SystemClock())
    return Visitor(app.test_client())


async def test_a_mailed_link_signs_in_once_and_sets_a_strict_cookie(store: Store) -> None:
    await make_org(store)
    v = visitor(store)
    page = await v.get("/login")
    assert page.status == 200 and "E-mail me a sign-in link" in page.text
    page = await v.post("/login", {"email": "Owner@Acme.test"})
    assert page.status == 200 and "Check your e-mail" in page.text
    [mail] = await mails_to(store, OWNER)
    link = link_in(mail["text_body"])
    assert link.startswith(f"{BASE_URL}/login/") and link in mail["html_body"]
    token = link.rsplit("/", 1)[1]
    assert len(token) == 43  # 32 random bytes
    page = await v.get(f"/login/{token}")
    assert page.status == 200 and "Sign in" in page.text
    assert v.cookie("runlater_session") is None  # a GET signs no one in
    page = await v.post(f"/login/{token}")
    assert page.status == 303 and page.location == "/"
    [cookie] = [c for c in page.headers.getlist("Set-Cookie") if c.startswith("runlater_session=")]
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Secure" not in cookie  # the base URL is http
    home = await v.get("/")
    assert home.status == 200 and "Acme" in home.text and OWNER in home.text
    # Used: the link is gone, also for another browser.
    other = visitor(store)
    assert (await other.get(f"/login/{token}")).status == 410
    await other.get("/login")
    assert (
        await other.post(f"/login/{token}", csrf=(await other.get("/login")).csrf)
    ).status == 410


async def test_only_the_hash_of_a_token_is_stored(store: Store, database_url: str) -> None:
    await make_org(store)
    v = visitor(store)
    await v.submit("/login", "/login", {"email": OWNER})
    token = link_in((await mails_to(store, OWNER))[0]["text_body"]).rsplit("/", 1)[1]
    await v.get(f"/login/{token}")
    await v.post(f"/login/{token}")
    session = v.cookie("runlater_session")
    async with raw_connection(database_url) as conn:
        tokens = await sql(conn, "select token_hash from login_tokens")
        sessions = await sql(conn, "select token_hash from sessions")
    assert tokens == [{"token_hash": token_hash(token)}]
    assert sessions == [{"token_hash": token_hash(session or "")}]


async def test_the_same_answer_whether_or_not_the_address_has_an_account(store: Store) -> None:
    await make_org(store)
    v = visitor(store)
    known = await v.submit("/login", "/login", {"email": OWNER})
    unknown = await v.submit("/login", "/login", {"email": "nobody@acme.test"})
    assert known.status == unknown.status == 200
    assert known.text.replace(OWNER, "X") == unknown.text.replace("nobody@acme.test", "X")
    assert await mails_to(store, "nobody@acme.test") == []


async def test_an_expired_link_fails(store: Store, database_url: str) -> None:
    await make_org(store)
    v = visitor(store)
    await v.submit("/login", "/login", {"email": OWNER})
    token = link_in((await mails_to(store, OWNER))[0]["text_body"]).rsplit("/", 1)[1]
    async with raw_connection(database_url) as conn:
        await sql(conn, "update login_tokens set expires_at = now() - interval '1 second'")
    assert (await v.get(f"/login/{token}")).status == 410
    page = await v.post(f"/login/{token}", csrf=(await v.get("/login")).csrf)
    assert page.status == 410 and "/login" in page.text
    assert v.cookie("runlater_session") is None


async def test_two_concurrent_posts_of_one_link_give_one_session(
    store: Store, database_url: str
) -> None:
    await make_org(store)
    v = visitor(store)
    await v.submit("/login", "/login", {"email": OWNER})
    token = link_in((await mails_to(store, OWNER))[0]["text_body"]).rsplit("/", 1)[1]
    a, b = visitor(store), visitor(store)
    for who in (a, b):
        await who.get(f"/login/{token}")
    statuses: list[int] = []

    async def post(who: Visitor) -> None:
        statuses.append((await who.post(f"/login/{token}")).status)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(post, a)
        nursery.start_soon(post, b)
    assert sorted(statuses) == [303, 410]
    async with raw_connection(database_url) as conn:
        assert await sql(conn, "select count(*) as n from sessions") == [{"n": 1}]


async def test_a_cross_site_post_is_refused(store: Store) -> None:
    await make_org(store)
    v = visitor(store)
    await v.get("/login")
    refused = await v.post("/login", {"email": OWNER}, origin="https://evil.example")
    assert refused.status == 403 and "did not come from a page of this server" in refused.text
    no_origin = await v.post("/login", {"email": OWNER}, origin=None)
    assert no_origin.status == 403
    assert await mails_to(store, OWNER) == []
    # The Referer counts when there is no Origin.
    response = await v.client.post(
        "/login",
        form={"email": OWNER, "csrf_token": (await v.get("/login")).csrf},
        headers={"Referer": f"{BASE_URL}/login"},
    )
    assert response.status_code == 200
    assert len(await mails_to(store, OWNER)) == 1


async def test_a_form_without_its_csrf_token_is_given_back(store: Store) -> None:
    await make_org(store)
    v = visitor(store)
    await v.get("/login")
    page = await v.post("/login", {"email": OWNER}, csrf="")
    assert page.status == 403 and "This form had expired" in page.text
    assert f'value="{OWNER}"' in page.text  # the value is kept
    forged = await v.post("/login", {"email": OWNER}, csrf="x" * 43)
    assert forged.status == 403
    assert await mails_to(store, OWNER) == []
    # A signed-in form needs the session's token: another session's does not do.
    await sign_in(store, v, OWNER)
    other = visitor(store)
    await sign_in(store, other, OWNER)
    page = await v.post("/keys", {"name": "x"}, csrf=(await other.get("/keys")).csrf)
    assert page.status == 403 and "This form had expired" in page.text
    assert "Your new API key" not in page.text


async def test_sign_out_ends_the_session(store: Store) -> None:
    await make_org(store)
    v = visitor(store)
    await sign_in(store, v, OWNER)
    cookie = v.cookie("runlater_session")
    page = await v.submit("/", "/logout")
    assert page.status == 303 and page.location == "/login"
    assert await store.session(token_hash(cookie or ""), 60) is None
    assert (await v.get("/keys")).location == "/login"


async def test_the_login_rate_limit_holds(store: Store) -> None:
    await make_org(store)
    clock = ManualClock(datetime.now(UTC))
    v = visitor(store, clock=clock)
    statuses = []
    for _ in range(5):
        statuses.append((await v.submit("/login", "/login", {"email": OWNER})).status)
    assert statuses == [200, 200, 200, 429, 429]
    assert v.last is not None and v.last.headers["Retry-After"] == "20"
    assert len(await mails_to(store, OWNER)) == 3
    clock.advance(20)
    assert (await v.submit("/login", "/login", {"email": OWNER})).status == 200
    # Per client address too: other addresses from the same client.
    statuses = [
        (await v.submit("/login", "/login", {"email": f"p{i}@acme.test"})).status for i in range(8)
    ]
    assert statuses.count(429) >= 1


async def test_links_come_from_the_base_url_never_the_host_header(store: Store) -> None:
    await make_org(store)
    settings = Settings(base_url="https://runlater.example.com")
    v = visitor(store, settings)
    v.origin = "https://runlater.example.com"
    await v.get("/login", headers={"Host": "evil.example"})
    await v.post("/login", {"email": OWNER})
    link = link_in((await mails_to(store, OWNER))[0]["text_body"])
    assert link.startswith("https://runlater.example.com/login/")
    page = await v.post("/login/" + link.rsplit("/", 1)[1], csrf=(await v.get("/login")).csrf)
    [cookie] = [c for c in page.headers.getlist("Set-Cookie") if c.startswith("runlater_session=")]
    assert "Secure" in cookie


async def test_the_janitor_deletes_sessions_and_links_a_day_after_they_expired(
    store: Store, database_url: str
) -> None:
    await make_org(store)
    v = visitor(store)
    await sign_in(store, v, OWNER)  # one used link, one live session
    await visitor(store).submit("/login", "/login", {"email": OWNER})  # one unused link
    async with raw_connection(database_url) as conn:
        await sql(conn, "update sessions set expires_at = now() - interval '25 hours'")
        await sql(conn, "update login_tokens set expires_at = now() - interval '23 hours'")
    result = await Janitor(store, SystemClock(), interval_s=60).run_once()
    assert result.sign_ins_deleted == 1  # the session; the links expired less than a day ago
    async with raw_connection(database_url) as conn:
        assert await sql(conn, "select count(*) as n from sessions") == [{"n": 0}]
        assert await sql(conn, "select count(*) as n from login_tokens") == [{"n": 2}]


async def test_sign_up_is_closed_by_default_and_makes_an_owner_when_open(
    store: Store, database_url: str
) -> None:
    closed = visitor(store)
    assert (await closed.get("/signup")).status == 404
    assert "Sign up" not in (await closed.get("/login")).text
    v = visitor(store, Settings(signup="open"))
    assert 'href="/signup"' in (await v.get("/login")).text
    bad = await v.submit("/signup", "/signup", {"email": "x", "organization": ""})
    assert bad.status == 422
    assert "name@example.com" in bad.text and "enter a name" in bad.text
    page = await v.submit(
        "/signup", "/signup", {"email": "New@Startup.test", "organization": "Startup"}
    )
    assert page.status == 200 and "Check your e-mail" in page.text
    [mail] = await mails_to(store, "new@startup.test")
    assert mail["kind"] == "signup"
    path = "/login/" + link_in(mail["text_body"]).rsplit("/", 1)[1]
    await v.get(path)
    assert (await v.post(path)).status == 303
    home = await v.get("/")
    assert "<h1>Startup</h1>" in home.text and "new@startup.test · owner" in home.text
    # The same address again: a sign-in link only, no second organization.
    again = await visitor(store, Settings(signup="open")).submit(
        "/signup", "/signup", {"email": "new@startup.test", "organization": "Other"}
    )
    assert again.status == 200
    assert [m["kind"] for m in await mails_to(store, "new@startup.test")] == ["signup", "login"]
    async with raw_connection(database_url) as conn:
        names = await sql(conn, "select name from organizations order by name")
    assert names == [{"name": "Startup"}]
