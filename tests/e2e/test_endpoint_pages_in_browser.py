"""The endpoint pages in a real headless Chromium against a real node: an endpoint made with the
form; a webhook sent to its inbound URL appears on its page without a reload and is forwarded
to a local sink; the event's page shows the request safely; Replay sends it again. Screenshots
go to test-artifacts/screenshots/ (1280 px wide, as the other dashboard screenshots)."""

from __future__ import annotations

import json
import time

import httpx
from playwright.sync_api import Browser, expect

from tests.e2e.test_dashboard_in_browser import browser, shot, sign_in_by_link  # noqa: F401
from tests.e2e.test_live_pages_in_browser import LIVE_TIMEOUT_MS, Site, site  # noqa: F401
from tests.helpers.process import SinkProcess, api

WIDTH, HEIGHT = 1280, 800


def forwarded(sink: SinkProcess, path: str, count: int, timeout_s: float = 20.0) -> list[dict]:
    """The sink's requests to ``path`` once there are ``count`` of them (the node's workers
    send them on their own; the sink's log is read until they are there)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r for r in sink.requests() if r["path"] == path]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_webhook_appears_live_and_is_replayed_from_its_page(
    browser: Browser,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    serve, sink = site.serve, site.sink
    context = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    sign_in_by_link(page, site.link)
    page.get_by_role("link", name="Endpoints").click()
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    page.get_by_role("link", name="New endpoint").click()
    page.get_by_label("Name").fill("Stripe")
    page.get_by_label("Forward URLs").fill(f"{sink.url}/stripe\n{sink.url}/audit")
    page.get_by_label("Retries of each forward", exact=False).fill("2")
    page.get_by_label("Headers to set").fill("X-Forwarded-By: runlater")
    shot(page, "51-endpoint-form")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_role("status")).to_contain_text("The endpoint is created")
    endpoint_id = page.url.rsplit("/", 1)[1]
    inbound_url = page.locator("[data-role=inbound-url]").inner_text()
    assert inbound_url.startswith(serve.url + "/in/")
    expect(page.get_by_text("No events yet.")).to_be_visible()
    expect(page.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)

    # A webhook from "Stripe": it shows on the open page without a reload.
    payload = {"type": "invoice.paid", "note": "<img src=x onerror=alert(1)>"}
    sent = httpx.post(
        inbound_url + "/v1/events?live=1",
        content=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=abc"},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    event_id = sent.json()["id"]
    row = page.locator(f'tr[data-event="{event_id}"]')
    expect(row.locator("[data-role=status]")).to_have_text("received", timeout=LIVE_TIMEOUT_MS)
    expect(row).to_contain_text("POST /v1/events?live=1")
    assert len(forwarded(sink, "/stripe", 1)) == 1 and len(forwarded(sink, "/audit", 1)) == 1
    expect(row).to_contain_text("success 200", timeout=LIVE_TIMEOUT_MS)  # both forwards done
    binary = httpx.put(inbound_url, content=bytes(range(64)), timeout=10)
    assert binary.status_code == 200
    expect(page.locator(f'tr[data-event="{binary.json()["id"]}"]')).to_be_visible(
        timeout=LIVE_TIMEOUT_MS
    )
    shot(page, "52-endpoint-events-live")

    listing = context.new_page()
    listing.goto(serve.url + "/endpoints")
    entry = listing.locator("tr", has_text="Stripe")
    expect(entry.locator("[data-role=events-24h]")).to_have_text("2")
    expect(entry).to_contain_text(inbound_url)
    copy = entry.get_by_role("button", name="Copy the inbound URL of Stripe")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert listing.evaluate("navigator.clipboard.readText()") == inbound_url
    shot(listing, "53-endpoints")
    listing.goto(f"{serve.url}/endpoints/{endpoint_id}/events/{binary.json()['id']}")
    expect(listing.get_by_text("Binary (not UTF-8 text): a hex dump")).to_be_visible()
    expect(listing.locator("pre.body")).to_contain_text(
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|"
    )
    shot(listing, "55-endpoint-event-binary")

    # The event's page: the request, headers, the body escaped and pretty-printed.
    row.get_by_role("link").click()
    expect(page.locator("[data-role=request-line]")).to_have_text(
        f"POST /in/{inbound_url.rsplit('/', 1)[1]}/v1/events?live=1"
    )
    expect(page.get_by_role("cell", name="stripe-signature")).to_be_visible()
    body = page.locator("pre.body")
    expect(body).to_contain_text('"note": "<img src=x onerror=alert(1)>"')  # as text, not HTML
    assert page.locator("[data-role=body] img").count() == 0
    expect(page.locator("[data-role=forward-status]")).to_have_count(2)
    shot(page, "54-endpoint-event")

    # Replay: the sink receives it again.
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("The event is replayed to 2 URLs.")
    # (The PUT of the binary event went there too: 3 in all.)
    again = [r for r in forwarded(sink, "/stripe", 3) if r["method"] == "POST"]
    assert len(again) == 2 and json.loads(again[1]["body"]) == payload
    assert again[1]["headers"].get("x-forwarded-by") == "runlater"
    expect(page.locator("[data-role=forward-status]")).to_have_count(4)
    expect(page.locator("[data-role=forward-status]", has_text="success 200")).to_have_count(
        4, timeout=LIVE_TIMEOUT_MS
    )
    shot(page, "56-endpoint-event-replayed")
    events = api(serve, site.key, "GET", f"/endpoints/{endpoint_id}/events").json()["data"]
    assert [e["id"] for e in events][-1] == event_id  # newest first: the binary one leads
