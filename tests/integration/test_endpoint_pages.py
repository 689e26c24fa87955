"""The inbound endpoint pages: create, edit, enable, disable and delete through the forms (the
API's rules and messages, through ``InboundService``); the events an endpoint received, shown
safely (text escaped, JSON pretty-printed, binary as a hex dump, long bodies cut with their
size); an event's forwards and a replay; roles; another organization's ids are not found."""

from __future__ import annotations

import json
from uuid import UUID

from quart_trio import QuartTrio

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.inbound import EventFilter
from runlater.store.postgres import Store
from runlater.web.app import create_app
from runlater.web.pages.bodies import HEX_SHOWN, TEXT_SHOWN
from tests.helpers.api import deliver_due
from tests.helpers.dashboard import Visitor, sign_in
from tests.helpers.factories import make_org
from tests.helpers.sink import serve_sink
from tests.integration.test_members import invite_and_join

OWNER = "owner@acme.test"
FORM = {
    "name": "stripe",
    "slug": "",
    "forward_urls": "",
    "retry_attempts": "5",
    "alert_after": "1",
    "notify_on_failure": "on",
    "verify_scheme": "",
    "verify_encoding": "hex",
    "verify_tolerance_s": "300",
}


def site(store: Store) -> QuartTrio:
    # Forward URLs point at a local sink: private targets allowed, as on a test node.
    return create_app(store, Settings(allow_private_targets=True), SystemClock())


async def signed_in(store: Store, app: QuartTrio, email: str = OWNER) -> Visitor:
    v = Visitor(app.test_client())
    await sign_in(store, v, email)
    return v


async def send(
    app: QuartTrio,
    slug: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    suffix: str = "",
) -> int:
    """A webhook to ``/in/{slug}``, as a sender would send it; its status code."""
    # (quart's protocol lists json= as required; the client does not need it.)
    response = await app.test_client().open(  # type: ignore[call-arg]
        f"/in/{slug}{suffix}",
        method=method,
        data=body,
        headers=headers or {},
        scope_base={"client": ("203.0.113.7", 40000)},
    )
    return response.status_code


async def create(v: Visitor, **fields: str) -> UUID:
    await v.get("/endpoints/new")
    page = await v.post("/endpoints/new", FORM | fields)
    assert page.status == 303, page.text[:3000]
    assert page.location and page.location.startswith("/endpoints/")
    return UUID(page.location.rsplit("/", 1)[1])


async def test_an_endpoint_is_created_edited_disabled_and_deleted_in_the_forms(
    store: Store,
) -> None:
    org, _ = await make_org(store)
    app = site(store)
    v = await signed_in(store, app)
    empty = await v.get("/endpoints")
    assert empty.status == 200 and "No endpoints yet." in empty.text
    assert 'href="/endpoints" aria-current="page"' in empty.text  # the header's nav
    eid = await create(
        v,
        name="stripe",
        slug="acme-stripe",
        forward_urls="https://example.com/a\n\n  https://example.com/b  \n",
        use_queue="on",
        retry_attempts="3",
        forward_method="PUT",
        forward_headers="X-Source: runlater\nX-Team: billing",
        verify_scheme="stripe",
        verify_secret="whsec_first",
        verify_tolerance_s="120",
    )
    row = await store.get_endpoint(org, eid)
    assert row["forward_urls"] == ["https://example.com/a", "https://example.com/b"]
    assert (row["use_queue"], row["retry_attempts"], row["forward_method"]) == (True, 3, "PUT")
    assert row["forward_headers"] == {"X-Source": "runlater", "X-Team": "billing"}
    assert (row["verify_scheme"], row["verify_secret"], row["verify_tolerance_s"]) == (
        "stripe",
        "whsec_first",
        120,
    )
    assert row["forward_body"] is None and row["enabled"]
    shown = await v.get(f"/endpoints/{eid}")
    assert "The endpoint is created" in shown.text
    assert "http://127.0.0.1:8000/in/acme-stripe" in shown.text  # the URL and the curl example
    assert "curl -X POST http://127.0.0.1:8000/in/acme-stripe" in shown.text
    assert "No events yet." in shown.text
    listed = await v.get("/endpoints")
    assert f'href="/endpoints/{eid}">stripe</a>' in listed.text
    assert 'data-copy="http://127.0.0.1:8000/in/acme-stripe"' in listed.text
    assert "2 URLs" in listed.text

    edit = await v.get(f"/endpoints/{eid}/edit")
    assert "whsec_first" not in edit.text  # the secret is never shown
    assert "X-Team: billing" in edit.text and 'value="acme-stripe"' in edit.text
    values = FORM | {
        "name": "stripe live",
        "slug": "acme-stripe",
        "forward_urls": "https://example.com/c",
        "enabled": "on",
        "verify_scheme": "stripe",
        "verify_secret": "",  # kept
        "forward_body": '{"fixed": true}',
    }
    saved = await v.post(f"/endpoints/{eid}/edit", values)
    assert saved.status == 303, saved.text[:3000]
    row = await store.get_endpoint(org, eid)
    assert row["name"] == "stripe live" and row["forward_urls"] == ["https://example.com/c"]
    assert row["verify_secret"] == "whsec_first" and row["forward_body"] == '{"fixed": true}'
    assert not row["use_queue"] and row["forward_method"] is None  # unchecked, "as received"
    await v.get(f"/endpoints/{eid}/edit")
    await v.post(f"/endpoints/{eid}/edit", values | {"verify_scheme": ""})
    assert (await store.get_endpoint(org, eid))["verify_scheme"] is None

    await v.get(f"/endpoints/{eid}")
    assert (await v.post(f"/endpoints/{eid}/disable")).status == 303
    assert not (await store.get_endpoint(org, eid))["enabled"]
    page = await v.get(f"/endpoints/{eid}")
    assert "The endpoint is disabled" in page.text and ">Enable</button>" in page.text
    assert await send(app, "acme-stripe", b"{}") == 410
    await v.post(f"/endpoints/{eid}/enable")
    assert (await store.get_endpoint(org, eid))["enabled"]
    assert await send(app, "acme-stripe", b"{}") == 200
    await v.get(f"/endpoints/{eid}")
    gone = await v.post(f"/endpoints/{eid}/delete")
    assert gone.status == 303 and gone.location == "/endpoints"
    assert "The endpoint is deleted" in (await v.get("/endpoints")).text
    assert (await v.get(f"/endpoints/{eid}")).status == 404
    entries = await store.search_audit_log(
        org, action="endpoints", actor_type="user", limit=20, offset=0
    )
    assert [e["action"] for e in entries] == [
        "DELETE /api/v1/endpoints/{endpoint_id}",
        *["PATCH /api/v1/endpoints/{endpoint_id}"] * 4,
        "POST /api/v1/endpoints",
    ]


async def test_bad_input_comes_back_beside_its_field_with_the_values_kept(store: Store) -> None:
    await make_org(store)
    # The SSRF guard as in production: private addresses refused.
    v = await signed_in(store, create_app(store, Settings(), SystemClock()))
    await v.get("/endpoints/new")
    page = await v.post(
        "/endpoints/new",
        FORM | {"name": "", "slug": "no", "forward_urls": "https://example.com/ok\nftp://x",
                "forward_headers": "not a header", "retry_attempts": "many",
                "verify_scheme": "hmac", "verify_secret": "s"},
    )  # fmt: skip
    assert page.status == 422
    assert "line 1: write one header per line, Name: value" in page.text
    assert "must be a whole number" in page.text
    assert 'aria-invalid="true" aria-describedby="e-forward_headers"' not in page.text
    assert "https://example.com/ok\nftp://x</textarea>" in page.text  # kept
    page = await v.post(
        "/endpoints/new",
        FORM | {"name": "x", "slug": "no", "forward_urls": "https://example.com/ok\nftp://x",
                "verify_scheme": "hmac", "verify_secret": "s"},
    )  # fmt: skip
    assert page.status == 422
    assert 'id="e-slug"' in page.text and 'id="e-forward_urls"' in page.text
    assert "the hmac scheme needs `header`" in page.text
    private = await v.post(
        "/endpoints/new",
        FORM | {"name": "x", "forward_urls": "https://example.com/a\nhttp://10.1.2.3/hook"},
    )
    assert private.status == 422 and "url_not_allowed" not in private.text
    assert "line 2:" in private.text  # the refused URL's line
    stale = await v.post("/endpoints/new", FORM | {"name": "x"}, csrf="stale")
    assert stale.status == 403 and "This form had expired" in stale.text


async def test_events_appear_with_bodies_shown_safely(store: Store) -> None:
    org, _ = await make_org(store)
    app = site(store)
    v = await signed_in(store, app)
    eid = await create(v, slug="acme-hooks")
    assert await send(app, "acme-hooks", b'{"type":"invoice.paid","n":1}',
                      {"Content-Type": "application/json", "X-Note": "<b>bold</b>"},
                      suffix="/sub?x=1") == 200  # fmt: skip
    assert await send(app, "acme-hooks", b"<script>alert(1)</script>") == 200
    binary = bytes(range(256)) * 2
    assert await send(app, "acme-hooks", binary, method="PUT") == 200
    big = b"a" * (TEXT_SHOWN + 10)
    assert await send(app, "acme-hooks", big) == 200
    page = await v.get(f"/endpoints/{eid}")
    assert "4 events." in page.text and "203.0.113.7" in page.text
    assert "512 B" in page.text and "64.0 KiB" in page.text
    assert "POST /sub?x=1" in page.text and "PUT /" in page.text
    assert page.text.count('data-role="status">received') == 4
    listed = await v.get("/endpoints")
    assert '<span data-role="events-24h">4</span>' in listed.text
    events = await store.list_inbound_events(org, eid, EventFilter(), limit=10, offset=0)
    by_size = {e["size"]: e for e in events}

    def event_path(size: int) -> str:
        return f"/endpoints/{eid}/events/{by_size[size]['id']}"

    shown = await v.get(event_path(29))
    assert "POST /in/acme-hooks/sub?x=1" in shown.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in shown.text and "<b>bold</b>" not in shown.text
    assert "JSON, pretty-printed" in shown.text
    pretty = json.dumps({"type": "invoice.paid", "n": 1}, indent=2).replace('"', "&#34;")
    assert pretty in shown.text
    script = await v.get(event_path(25))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in script.text
    assert "<script>alert(1)</script>" not in script.text
    hexed = await v.get(event_path(512))
    assert "Binary (not UTF-8 text): a hex dump" in hexed.text
    assert "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|" in (
        hexed.text
    )
    assert "00000040  40 41 42 43" in hexed.text  # '@ABC', as a hex dump shows it
    assert "cut short" not in hexed.text
    cut = await v.get(event_path(len(big)))
    assert "cut short" in cut.text and "64.0 KiB" in cut.text
    assert "a" * TEXT_SHOWN in cut.text and "a" * (TEXT_SHOWN + 1) not in cut.text
    raw = await v.client.get(event_path(512) + "/body")
    assert raw.status_code == 200 and await raw.get_data() == binary
    assert raw.headers["Content-Type"] == "application/octet-stream"
    assert raw.headers["Content-Disposition"].startswith("attachment;")
    huge = bytes(range(256)) * (HEX_SHOWN // 256 + 1)
    assert await send(app, "acme-hooks", huge) == 200
    [newest, *_] = await store.list_inbound_events(org, eid, EventFilter(), limit=1, offset=0)
    dumped = await v.get(f"/endpoints/{eid}/events/{newest['id']}")
    assert "cut short" in dumped.text and f"{HEX_SHOWN - 16:08x}  " in dumped.text
    assert f"{HEX_SHOWN:08x}  " not in dumped.text


async def test_forwards_show_their_outcome_and_replay_sends_again(store: Store) -> None:
    org, _ = await make_org(store)
    app = site(store)
    v = await signed_in(store, app)
    async with serve_sink() as sink:
        eid = await create(
            v,
            slug="acme-fwd",
            forward_urls=f"{sink.url}/a\n{sink.url}/status/500",
            retry_attempts="0",  # the failure is final at once
        )
        assert await send(app, "acme-fwd", b"ping", {"Content-Type": "text/plain"}) == 200
        [event] = await store.list_inbound_events(org, eid, EventFilter(), limit=5, offset=0)
        path = f"/endpoints/{eid}/events/{event['id']}"
        waiting = await v.get(path)
        assert waiting.text.count('data-role="forward-status">pending') == 2
        await deliver_due(store)
        assert sorted(r.path for r in sink.requests) == ["/a", "/status/500"]
        page = await v.get(path)
        assert 'data-role="forward-status">success 200' in page.text
        assert 'data-role="forward-status">failed 500' in page.text
        listing = await v.get(f"/endpoints/{eid}")
        assert "success 200" in listing.text
        forwards = await store.get_inbound_event(org, eid, event["id"])
        for f in forwards["forwards"]:
            assert f'href="/tasks/{f["task_id"]}"' in page.text
            assert f'href="/executions/{f["execution_id"]}"' in page.text
        replayed = await v.post(f"{path}/replay")
        assert replayed.status == 303 and replayed.location == path
        again = await v.get(path)
        assert "The event is replayed to 2 URLs." in again.text
        await deliver_due(store)
        assert sorted(r.path for r in sink.requests[2:]) == ["/a", "/status/500"]
        assert [r.body for r in sink.requests] == [b"ping"] * 4
    entries = await store.search_audit_log(
        org, action="replay", actor_type="user", limit=5, offset=0
    )
    assert [e["resource_id"] for e in entries] == [str(event["id"])]


async def test_a_rejected_event_shows_its_reason_and_a_member_may_replay_but_not_edit(
    store: Store,
) -> None:
    org, _ = await make_org(store)
    app = site(store)
    owner = await signed_in(store, app)
    eid = await create(owner, slug="acme-gh", verify_scheme="github", verify_secret="s3cret")
    assert await send(app, "acme-gh", b'{"zen": "x"}') == 401
    page = await owner.get(f"/endpoints/{eid}")
    assert 'data-role="status">rejected' in page.text
    [event] = await store.list_inbound_events(org, eid, EventFilter(), limit=5, offset=0)
    assert event["reason"] and event["reason"] in page.text
    member = await invite_and_join(store, owner, "mia@acme.test", "member")
    seen = await member.get(f"/endpoints/{eid}/events/{event['id']}")
    assert seen.status == 200 and "Not forwarded: the event was rejected." in seen.text
    assert ">Replay</button>" in seen.text
    assert f'href="/endpoints/{eid}/edit"' not in (await member.get(f"/endpoints/{eid}")).text
    for action in ("edit", "disable", "delete"):
        refused = await member.post(f"/endpoints/{eid}/{action}", FORM, csrf=seen.csrf)
        assert refused.status == 403, action
    assert (await member.get("/endpoints/new")).status == 403
    replayed = await member.post(f"/endpoints/{eid}/events/{event['id']}/replay", csrf=seen.csrf)
    assert replayed.status == 303  # no forward URL: nothing to send, but allowed
    assert "The event is replayed to 0 URLs." in (await member.get(replayed.location or "")).text
    assert (await store.get_endpoint(org, eid))["enabled"]


async def test_another_organizations_endpoint_and_event_are_not_found(store: Store) -> None:
    globex, _ = await make_org(store, "Globex")
    app = site(store)
    theirs = await signed_in(store, app, "owner@globex.test")
    eid = await create(theirs, slug="globex-hooks")
    assert await send(app, "globex-hooks", b"secret stuff") == 200
    [event] = await store.list_inbound_events(globex, eid, EventFilter(), limit=5, offset=0)
    await make_org(store, "Acme")
    mine = await signed_in(store, app)
    own = await create(mine, name="mine", slug="acme-own")
    for path in (
        f"/endpoints/{eid}",
        f"/endpoints/{eid}/edit",
        f"/endpoints/{eid}/events/{event['id']}",
        f"/endpoints/{eid}/events/{event['id']}/body",
        f"/endpoints/{own}/events/{event['id']}",  # my endpoint, their event
        "/endpoints/not-a-uuid",
    ):
        assert (await mine.get(path)).status == 404, path
    csrf = (await mine.get("/endpoints")).csrf
    for path in (
        f"/endpoints/{eid}/disable",
        f"/endpoints/{eid}/delete",
        f"/endpoints/{own}/events/{event['id']}/replay",
    ):
        assert (await mine.post(path, {}, csrf=csrf)).status == 404, path
    assert "globex" not in (await mine.get("/endpoints")).text
    assert (await store.get_endpoint(globex, eid))["enabled"]
