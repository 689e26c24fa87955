"""Inbound endpoints over the API and ``/in/{slug}``: CRUD, events, replays, signatures,
forwarding byte-exact to a real local HTTP server (docs/api.md "Inbound endpoints")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

from quart_trio import QuartTrio

from runlater.clock import ManualClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.api import TARGET, Api, Reply, assert_error, deliver_due
from tests.helpers.db import raw_connection, sql
from tests.helpers.sink import serve_sink

ENDPOINT_KEYS = {
    "id",
    "name",
    "slug",
    "inbound_url",
    "forward_urls",
    "enabled",
    "retry_attempts",
    "use_queue",
    "forward_headers",
    "forward_body",
    "forward_method",
    "forward_authorization",
    "verify",
    "notify_on_failure",
    "notify_on_recovery",
    "on_failure_url",
    "on_recovery_url",
    "alert_after",
    "inserted_at",
    "updated_at",
}
EVENT_KEYS = {
    "id",
    "endpoint_id",
    "status",
    "reason",
    "method",
    "path",
    "query",
    "headers",
    "encoding",
    "body",
    "body_base64",
    "size",
    "source_ip",
    "received_at",
}


async def make_endpoint(api: Api, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "hooks")
    reply = await api.post("/endpoints", json=fields)
    assert reply.status == 201, reply.body
    data: dict[str, Any] = reply.body["data"]
    return data


async def send(
    app: QuartTrio,
    slug: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    suffix: str = "",
    headers: dict[str, str] | None = None,
    peer: str = "127.0.0.1",
) -> Reply:
    response = await app.test_client().open(  # type: ignore[call-arg]
        f"/in/{slug}{suffix}",
        method=method,
        data=body,
        headers=headers or {},
        scope_base={"client": (peer, 40000)},
    )
    text = await response.get_data(as_text=True)
    return Reply(response.status_code, json.loads(text) if text else None, text, response.headers)


async def rows(store: Store, query: str, *args: Any) -> list[dict[str, Any]]:
    async with raw_connection(store.dsn) as conn:
        return await sql(conn, query, *args)


async def count(store: Store, table: str) -> int:
    return int((await rows(store, f"select count(*) as n from {table}"))[0]["n"])


async def events(api: Api, endpoint_id: str, query: str = "") -> list[dict[str, Any]]:
    reply = await api.get(f"/endpoints/{endpoint_id}/events{query}")
    assert reply.status == 200, reply.body
    found: list[dict[str, Any]] = reply.body["data"]
    return found


# ------------------------------------------------------------------------ the resource


async def test_an_endpoint_is_created_read_changed_and_deleted(api: Api, app: QuartTrio) -> None:
    made = await make_endpoint(api, name="stripe", forward_urls=[TARGET])
    assert set(made) == ENDPOINT_KEYS
    assert len(made["slug"]) == 24 and made["slug"].isalnum()
    assert made["inbound_url"] == f"http://127.0.0.1:8000/in/{made['slug']}"
    assert (made["enabled"], made["retry_attempts"], made["use_queue"]) == (True, 5, False)
    assert made["verify"] is None and made["forward_method"] is None
    assert (await api.get(f"/endpoints/{made['id']}")).body["data"] == made
    listed = await api.get("/endpoints")
    assert [e["id"] for e in listed.body["data"]] == [made["id"]]
    assert listed.body["has_more"] is False
    changed = await api.patch(
        f"/endpoints/{made['id']}",
        json={
            "verify": {"scheme": "github", "secret": "s3cret"},
            "forward_method": "put",
            "retry_attempts": 2,
            "slug": "my-stripe-hooks",
        },
    )
    assert changed.status == 200, changed.body
    data = changed.body["data"]
    assert data["verify"] == {
        "scheme": "github",
        "secret": "s3cret",
        "header": None,
        "encoding": None,
        "tolerance_s": 300,
    }
    assert (data["forward_method"], data["retry_attempts"]) == ("PUT", 2)
    assert data["inbound_url"].endswith("/in/my-stripe-hooks")
    assert data["forward_urls"] == [TARGET] and data["name"] == "stripe"
    put = await api.put(f"/endpoints/{made['id']}", json={"verify": None})
    assert put.status == 200 and put.body["data"]["verify"] is None
    assert (await api.delete(f"/endpoints/{made['id']}")).status == 204
    assert_error(await api.get(f"/endpoints/{made['id']}"), 404, "not_found")
    assert_error(await send(app, "my-stripe-hooks", b"{}"), 404, "not_found")


async def test_unknown_and_invalid_fields_are_refused(api: Api) -> None:
    assert_error(
        await api.post("/endpoints", json={"name": "x", "forwad_urls": [TARGET]}),
        422,
        "validation_error",
        {"forwad_urls"},
    )
    assert_error(
        await api.post(
            "/endpoints",
            json={"name": "x", "verify": {"scheme": "stripe", "secret": "s", "tolerence": 5}},
        ),
        422,
        "validation_error",
        {"verify"},
    )
    assert_error(
        await api.post(
            "/endpoints",
            json={
                "name": "x",
                "forward_urls": [f"{TARGET}/{i}" for i in range(11)],
                "slug": "no",
                "verify": {"scheme": "hmac", "secret": "s"},
            },
        ),
        422,
        "validation_error",
        {"forward_urls", "slug", "verify"},
    )
    assert_error(
        await api.post("/endpoints", json={"forward_urls": [TARGET]}),
        422,
        "validation_error",
        {"name"},
    )
    await make_endpoint(api, name="taken", slug="taken-slug")
    assert_error(
        await api.post("/endpoints", json={"name": "taken"}), 422, "validation_error", {"name"}
    )
    assert_error(
        await api.post("/endpoints", json={"name": "other", "slug": "taken-slug"}),
        422,
        "validation_error",
        {"slug"},
    )


async def test_forward_urls_pass_the_ssrf_guard(store: Store, clock: ManualClock) -> None:
    from tests.helpers.api import make_app
    from tests.helpers.factories import make_org

    _, key = await make_org(store, "Acme")
    guarded = Api(make_app(store, clock, allow_private=False), key)
    reply = await guarded.post(
        "/endpoints",
        json={"name": "x", "forward_urls": ["https://example.com/", "http://127.0.0.1:9/x"]},
    )
    assert_error(reply, 422, "url_not_allowed", {"forward_urls[1]"})
    made = await make_endpoint(guarded, name="ok", forward_urls=["https://example.com/hook"])
    reply = await guarded.patch(
        f"/endpoints/{made['id']}", json={"forward_urls": ["http://10.0.0.1/x"]}
    )
    assert_error(reply, 422, "url_not_allowed", {"forward_urls[0]"})


async def test_another_organizations_endpoints_and_events_are_not_found(
    api: Api, other: Api, app: QuartTrio
) -> None:
    made = await make_endpoint(api, forward_urls=[TARGET])
    event = (await send(app, made["slug"], b"{}")).body
    base = f"/endpoints/{made['id']}"
    for method, path in (
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("GET", f"{base}/events"),
        ("GET", f"{base}/events/{event['id']}"),
        ("POST", f"{base}/events/{event['id']}/replay"),
        ("POST", f"{base}/replay"),
    ):
        reply = await other.call(method, path, json={} if method != "GET" else None)
        assert_error(reply, 404, "not_found")
    assert (await other.get("/endpoints")).body["data"] == []
    # An event id of the right endpoint's organization, asked through another endpoint.
    second = await make_endpoint(api, name="second")
    assert_error(await api.get(f"/endpoints/{second['id']}/events/{event['id']}"), 404, "not_found")


# ------------------------------------------------------------------------ /in/{slug}


async def test_unknown_disabled_and_too_large(api: Api, app: QuartTrio, store: Store) -> None:
    assert_error(await send(app, "no-such-endpoint", b"{}"), 404, "not_found")
    made = await make_endpoint(api, forward_urls=[TARGET])
    too_large = await send(app, made["slug"], b"x" * (1024 * 1024 + 1))
    assert_error(too_large, 413, "payload_too_large")
    assert (await count(store, "inbound_events"), await count(store, "tasks")) == (0, 0)
    await api.patch(f"/endpoints/{made['id']}", json={"enabled": False})
    assert_error(await send(app, made["slug"], b"{}"), 410, "endpoint_disabled")
    assert (await count(store, "inbound_events"), await count(store, "tasks")) == (0, 0)


async def test_bodies_are_forwarded_byte_exact_with_their_headers(
    api: Api, app: QuartTrio, store: Store
) -> None:
    binary = bytes(range(256)) * 4 + b"\x00\xff\xfe"
    form = b"name=J%C3%BCrgen&amount=10%2C50&note=a+b"
    big = json.dumps({"pad": "x" * (1024 * 1024 - 11)}).encode()
    assert len(big) == 1024 * 1024
    sent = [
        (binary, "application/octet-stream"),
        (form, "application/x-www-form-urlencoded"),
        (big, "application/json"),
    ]
    async with serve_sink() as sink:
        made = await make_endpoint(api, forward_urls=[f"{sink.url}/fwd"])
        ids = []
        for body, content_type in sent:
            reply = await send(
                app,
                made["slug"],
                body,
                suffix="/sub/path?x=1&y=%20",
                headers={
                    "Content-Type": content_type,
                    "X-Custom": "kept",
                    "Cookie": "session=secret",
                    "Authorization": "Bearer secret",
                    "Proxy-Authorization": "Basic c2VjcmV0",
                    "Keep-Alive": "timeout=5",
                    "TE": "trailers",
                },
            )
            assert reply.status == 200, reply.body
            assert set(reply.body) == {"id", "status"} and reply.body["status"] == "received"
            ids.append(reply.body["id"])
        while len(sink.requests) < 3:
            await deliver_due(store)
        received = await sink.wait_for(3)
    by_body = {r.body: r for r in received}
    for body, content_type in sent:
        request = by_body[body]  # identical bytes arrived
        assert request.method == "POST" and request.path == "/fwd"
        assert request.headers["content-type"] == content_type
        assert request.headers["x-custom"] == "kept"
        assert "remote-addr" not in request.headers
        for dropped in ("cookie", "authorization", "proxy-authorization", "keep-alive", "te"):
            assert dropped not in request.headers, dropped
        assert request.headers["content-length"] == str(len(body))
    listed = await events(api, made["id"])
    assert [e["id"] for e in listed] == ids[::-1]
    first = (await api.get(f"/endpoints/{made['id']}/events/{ids[0]}")).body["data"]
    assert set(first) == EVENT_KEYS | {"forwards"}
    assert first["encoding"] == "base64" and first["body"] is None
    assert base64.b64decode(first["body_base64"]) == binary
    assert (first["path"], first["query"], first["size"]) == ("/sub/path", "x=1&y=%20", len(binary))
    assert first["headers"]["cookie"] == "session=secret"  # the record keeps what came
    assert "remote-addr" not in first["headers"]  # quart's own, which no sender sent
    [forward] = first["forwards"]
    assert (forward["status"], forward["status_code"], forward["url"]) == (
        "success",
        200,
        f"{sink.url}/fwd",
    )
    second = (await api.get(f"/endpoints/{made['id']}/events/{ids[1]}")).body["data"]
    assert (second["encoding"], second["body"], second["body_base64"]) == (
        "utf-8",
        form.decode(),
        None,
    )


async def test_overrides_and_authorization_when_asked(
    api: Api, app: QuartTrio, store: Store
) -> None:
    async with serve_sink() as sink:
        made = await make_endpoint(
            api,
            forward_urls=[f"{sink.url}/a", f"{sink.url}/b"],
            forward_authorization=True,
            forward_method="PUT",
            forward_headers={"X-Custom": "override", "X-Added": "1"},
            forward_body='{"replaced": true}',
        )
        reply = await send(
            app,
            made["slug"],
            b"original",
            headers={"Authorization": "Bearer abc", "x-custom": "sent"},
        )
        assert reply.status == 200
        while len(sink.requests) < 2:
            await deliver_due(store)
        received = await sink.wait_for(2)
    assert sorted(r.path for r in received) == ["/a", "/b"]
    for request in received:
        assert request.method == "PUT" and request.body == b'{"replaced": true}'
        assert request.headers["authorization"] == "Bearer abc"
        assert request.headers["x-custom"] == "override" and request.headers["x-added"] == "1"
    tasks = await rows(store, "select name, origin, queue from tasks order by name")
    assert [t["name"] for t in tasks] == [f"hooks → {sink.url}/a", f"hooks → {sink.url}/b"]
    assert {t["origin"] for t in tasks} == {"inbound"} and {t["queue"] for t in tasks} == {None}


async def test_replay_one_event_and_a_filtered_set(
    api: Api, app: QuartTrio, store: Store, clock: ManualClock
) -> None:
    async with serve_sink() as sink:
        made = await make_endpoint(api, forward_urls=[f"{sink.url}/r"])
        start = clock.now()
        ids = []
        for n in range(3):
            ids.append((await send(app, made["slug"], f"event {n}".encode())).body["id"])
            clock.advance(60)
        while len(sink.requests) < 3:
            await deliver_due(store)
        one = await api.post(f"/endpoints/{made['id']}/events/{ids[1]}/replay")
        assert one.status == 202, one.body
        assert one.body["data"] == {"events": 1, "forwards": 1}
        while len(sink.requests) < 4:
            await deliver_due(store)
        assert sink.requests[3].body == b"event 1"
        since = (start + timedelta(seconds=30)).isoformat()
        chosen = await api.post(f"/endpoints/{made['id']}/replay", json={"since": since})
        assert chosen.status == 202 and chosen.body["data"] == {"events": 2, "forwards": 2}
        while len(sink.requests) < 6:
            await deliver_due(store)
        assert sorted(r.body for r in sink.requests[4:]) == [b"event 1", b"event 2"]
        by_id = await api.post(
            f"/endpoints/{made['id']}/replay", json={"event_ids": [ids[0]], "limit": 5}
        )
        assert by_id.body["data"] == {"events": 1, "forwards": 1}
    detail = (await api.get(f"/endpoints/{made['id']}/events/{ids[1]}")).body["data"]
    assert len(detail["forwards"]) == 3  # the original and two replays
    assert_error(
        await api.post(f"/endpoints/{made['id']}/replay", json={"statis": "received"}),
        422,
        "validation_error",
        {"statis"},
    )
    missing = "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e99"
    assert_error(
        await api.post(f"/endpoints/{made['id']}/events/{missing}/replay"), 404, "not_found"
    )


async def test_events_are_filtered_and_paged(api: Api, app: QuartTrio, clock: ManualClock) -> None:
    made = await make_endpoint(api, verify={"scheme": "github", "secret": "k"})
    start = clock.now()
    good = "sha256=" + hmac.new(b"k", b"ok", hashlib.sha256).hexdigest()
    assert (
        await send(app, made["slug"], b"ok", headers={"X-Hub-Signature-256": good})
    ).status == 200
    clock.advance(120)
    assert (await send(app, made["slug"], b"forged")).status == 401
    rejected = await events(api, made["id"], "?status=rejected")
    assert [e["reason"] for e in rejected] == ["missing X-Hub-Signature-256 header"]
    assert len(await events(api, made["id"], "?status=received")) == 1
    later = (start + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    assert [e["status"] for e in await events(api, made["id"], f"?since={later}")] == ["rejected"]
    assert [e["status"] for e in await events(api, made["id"], f"?until={later}")] == ["received"]
    page = await api.get(f"/endpoints/{made['id']}/events?limit=1")
    assert page.body["has_more"] is True and len(page.body["data"]) == 1
    assert_error(
        await api.get(f"/endpoints/{made['id']}/events?status=done"),
        422,
        "validation_error",
        {"status"},
    )
    assert_error(
        await api.get(f"/endpoints/{made['id']}/events?since=yesterday"),
        422,
        "validation_error",
        {"since"},
    )


# ------------------------------------------------------------------------ signatures


def stripe_header(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


async def test_stripe_signatures_accepted_rejected_and_out_of_tolerance(
    api: Api, app: QuartTrio, store: Store, clock: ManualClock
) -> None:
    secret = "whsec_test_stripe"
    made = await make_endpoint(
        api, forward_urls=[TARGET], verify={"scheme": "stripe", "secret": secret}
    )
    body = b'{"id":"evt_1","type":"invoice.paid"}'
    now = int(clock.now().timestamp())
    ok = await send(
        app, made["slug"], body, headers={"Stripe-Signature": stripe_header(secret, now, body)}
    )
    assert ok.status == 200 and ok.body["status"] == "received"
    wrong = await send(
        app,
        made["slug"],
        body,
        headers={"Stripe-Signature": stripe_header("whsec_other", now, body)},
    )
    error = assert_error(wrong, 401, "unauthorized", {"signature"})
    assert "no v1 signature matches" in error["details"]["signature"][0]
    stale = await send(
        app,
        made["slug"],
        body,
        headers={"Stripe-Signature": stripe_header(secret, now - 301, body)},
    )
    error = assert_error(stale, 401, "unauthorized", {"signature"})
    assert "at most 300 s" in error["details"]["signature"][0]
    stored = await rows(store, "select status, reason from inbound_events order by received_at, id")
    assert [r["status"] for r in stored] == ["received", "rejected", "rejected"]
    assert all(r["reason"] for r in stored[1:])
    assert await count(store, "tasks") == 1  # only the accepted one is forwarded
    await api.patch(
        f"/endpoints/{made['id']}",
        json={"verify": {"scheme": "stripe", "secret": secret, "tolerance_s": 600}},
    )
    later = await send(
        app,
        made["slug"],
        body,
        headers={"Stripe-Signature": stripe_header(secret, now - 301, body)},
    )
    assert later.status == 200


async def test_github_signatures_accepted_and_rejected(
    api: Api, app: QuartTrio, store: Store
) -> None:
    secret = "It's a Secret to Everybody"
    made = await make_endpoint(
        api, forward_urls=[TARGET], verify={"scheme": "github", "secret": secret}
    )
    body = b"Hello, World!"
    # The example of GitHub's documentation ("Validating webhook deliveries").
    good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert (
        await send(app, made["slug"], body, headers={"X-Hub-Signature-256": good})
    ).status == 200
    bad = await send(app, made["slug"], body + b"!", headers={"X-Hub-Signature-256": good})
    assert_error(bad, 401, "unauthorized", {"signature"})
    stored = await rows(store, "select status from inbound_events order by received_at, id")
    assert [r["status"] for r in stored] == ["received", "rejected"]
    assert await count(store, "tasks") == 1


# ------------------------------------------------------------------------ queue, address


async def test_use_queue_forwards_one_at_a_time_in_order(
    api: Api, app: QuartTrio, store: Store
) -> None:
    async with serve_sink() as sink:
        made = await make_endpoint(
            api, forward_urls=[f"{sink.url}/q1", f"{sink.url}/q2"], use_queue=True
        )
        for n in range(3):
            assert (await send(app, made["slug"], f"{n}".encode())).status == 200
        queues = await rows(store, "select distinct queue from tasks")
        assert queues == [{"queue": f"endpoint:{made['id']}"}]
        passes = 0
        while len(sink.requests) < 6:
            result = await deliver_due(store)
            passes += 1
            assert result.claimed <= 1  # the queue hands out one at a time
        received = await sink.wait_for(6)
    assert [(r.body, r.path) for r in received] == [
        (b"0", "/q1"),
        (b"0", "/q2"),
        (b"1", "/q1"),
        (b"1", "/q2"),
        (b"2", "/q1"),
        (b"2", "/q2"),
    ]
    assert passes >= 6


async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    store: Store, clock: ManualClock
) -> None:
    from tests.helpers.factories import make_org

    _, key = await make_org(store, "Acme")
    settings = Settings(allow_private_targets=True, trusted_proxies=("10.0.0.0/8",))
    proxied = create_app(store, settings, clock)
    made = await make_endpoint(Api(proxied, key), forward_urls=[TARGET])
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.0.0.7"}
    await send(proxied, made["slug"], b"1", headers=forwarded, peer="10.0.0.5")
    await send(proxied, made["slug"], b"2", headers=forwarded, peer="192.0.2.44")
    plain = create_app(store, Settings(allow_private_targets=True), clock)
    await send(plain, made["slug"], b"3", headers=forwarded, peer="10.0.0.5")
    stored = await rows(store, "select body, source_ip from inbound_events order by body")
    assert [(bytes(r["body"]), r["source_ip"]) for r in stored] == [
        (b"1", "203.0.113.9"),  # the right-most address no trusted proxy added
        (b"2", "192.0.2.44"),  # an untrusted peer's header is ignored
        (b"3", "10.0.0.5"),  # no trusted proxies: the peer
    ]


# ------------------------------------------------------------------------ notifications, live


async def test_a_forward_failing_for_good_notifies_as_the_endpoint(
    api: Api, app: QuartTrio, store: Store
) -> None:
    async with serve_sink() as sink:
        made = await make_endpoint(
            api, forward_urls=[f"{sink.url}/status/500"], retry_attempts=0, name="billing"
        )
        await send(app, made["slug"], b"{}")
        while not sink.requests:
            await deliver_due(store)
    found = await rows(
        store,
        "select event, resource_type, resource_id, resource_name, details from notification_events",
    )
    assert len(found) == 1, found
    [event] = found
    assert (event["event"], event["resource_type"], event["resource_name"]) == (
        "endpoint.failed",
        "endpoint",
        "billing",
    )
    assert str(event["resource_id"]) == made["id"]
    details = (
        event["details"] if isinstance(event["details"], dict) else json.loads(event["details"])
    )
    assert details["notify"] is True and details["extra_url"] is None
    assert details["error"] == "HTTP 500"
    # The forward task keeps no streak and no status-page days of its own.
    assert await rows(store, "select task_id from task_alert_states") == []
    assert await rows(store, "select resource_id from resource_days") == []


async def test_a_forward_succeeding_after_a_notified_failure_tells_the_recovery(
    api: Api, app: QuartTrio, store: Store
) -> None:
    async with serve_sink() as sink:
        made = await make_endpoint(
            api,
            forward_urls=[f"{sink.url}/status/500"],
            retry_attempts=0,
            name="billing",
            on_recovery_url="https://93.184.216.34/recovered",
        )
        await send(app, made["slug"], b"{}")
        while len(sink.requests) < 1:
            await deliver_due(store)
        changed = await api.patch(
            f"/endpoints/{made['id']}", json={"forward_urls": [f"{sink.url}/ok"]}
        )
        assert changed.status == 200, changed.body
        for n in (2, 3):  # a recovery, then a success that tells nothing
            await send(app, made["slug"], b"{}")
            while len(sink.requests) < n:
                await deliver_due(store)
    found = await rows(store, "select event, details from notification_events order by id")
    assert [e["event"] for e in found] == ["endpoint.failed", "endpoint.recovered"]
    details = found[1]["details"]
    details = details if isinstance(details, dict) else json.loads(details)
    assert details["notify"] is True
    assert details["extra_url"] == "https://93.184.216.34/recovered"


async def test_a_stored_event_is_a_live_event(api: Api, app: QuartTrio, store: Store) -> None:
    made = await make_endpoint(api)
    reply = await send(app, made["slug"], b"12345", method="PUT")
    [event] = await store.read_events("ie", [reply.body["id"]])
    assert event.type == "endpoint.event_received"
    assert set(event.data) == {"id", "endpoint_id", "status", "method", "received_at", "size"}
    assert (event.data["status"], event.data["method"], event.data["size"]) == (
        "received",
        "PUT",
        5,
    )
    assert str(event.data["endpoint_id"]) == made["id"]


# ------------------------------------------------------------------------ retention, limits


async def test_the_janitor_deletes_events_past_retention_with_their_forwards(
    api: Api, app: QuartTrio, store: Store, clock: ManualClock
) -> None:
    from runlater.actors.janitor import Janitor

    async with serve_sink() as sink:
        made = await make_endpoint(api, forward_urls=[f"{sink.url}/old"])
        now = clock.now()
        clock.set(now - timedelta(days=31))  # the pro plan keeps 30 days
        old = (await send(app, made["slug"], b"old")).body["id"]
        clock.set(now)
        recent = (await send(app, made["slug"], b"recent")).body["id"]
        while len(sink.requests) < 2:
            await deliver_due(store)
    result = await Janitor(store, clock, interval_s=300).run_once(now)
    assert result.inbound_events_deleted == 1
    assert [e["id"] for e in await events(api, made["id"])] == [recent]
    left = await rows(store, "select inbound_event_id from tasks")
    assert [str(r["inbound_event_id"]) for r in left] == [recent]
    assert old != recent


async def test_over_a_hard_monthly_limit_the_event_is_kept_as_rejected(
    store: Store, app: QuartTrio
) -> None:
    from tests.helpers.factories import make_org

    org, key = await make_org(store, "Freebie", tier="free")
    api = Api(app, key)
    made = await make_endpoint(api, forward_urls=[TARGET])
    await rows(
        store,
        "insert into usage_counters (organization_id, month, shard, executions) "
        "values ($1, date_trunc('month', now() at time zone 'UTC')::date, 0, 10000)",
        org,
    )
    reply = await send(app, made["slug"], b"{}")
    error = assert_error(reply, 422, "limit_exceeded")
    assert "monthly execution limit" in error["message"]
    [event] = await events(api, made["id"])
    assert event["status"] == "rejected" and "monthly execution limit" in event["reason"]
    assert await count(store, "tasks") == 0
