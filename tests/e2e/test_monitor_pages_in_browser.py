"""The monitor pages in a real headless Chromium against a real server: a monitor made with the
form (the cron helper shows its next runs), pinged by its URL; when it fails, its page and the
list show it down without a reload. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from playwright.sync_api import Browser, expect

from tests.e2e.test_dashboard_in_browser import browser, shot, sign_in_by_link  # noqa: F401
from tests.e2e.test_live_pages_in_browser import LIVE_TIMEOUT_MS, Site, site  # noqa: F401
from tests.helpers.process import api, sql


def test_a_monitor_made_in_the_form_goes_down_live_on_its_page(
    browser: Browser,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    serve = site.serve
    context = browser.new_context()
    page = context.new_page()
    sign_in_by_link(page, site.link)
    page.goto(serve.url + "/monitors/new")
    page.get_by_label("Name").fill("Nightly backup")
    page.get_by_label("On a cron schedule").check()
    page.get_by_label("Cron expression").fill("30 2 * * *")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    expect(page.locator("#cron-preview li")).to_have_count(5)
    shot(page, "45-monitor-form")
    page.get_by_role("button", name="Create monitor").click()
    expect(page.get_by_role("status")).to_contain_text("The monitor is created")
    expect(page.locator("[data-role=state]")).to_have_text("new")
    ping_url = page.locator("[data-role=ping-url]").inner_text()
    assert ping_url.startswith(serve.url + "/ping/")
    expect(page.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    assert httpx.post(ping_url + "/start", timeout=10).status_code == 200
    assert httpx.post(ping_url, content=b"dumped 42 tables", timeout=10).status_code == 200
    expect(page.locator("[data-role=state]")).to_have_text("up", timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_text("dumped 42 tables")).to_be_visible()
    listing = context.new_page()
    listing.goto(serve.url + "/monitors")  # the session cookie is the context's
    row = listing.locator("tr", has_text="Nightly backup")
    expect(row.locator("[data-role=state]")).to_have_text("up")
    expect(listing.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    assert httpx.post(ping_url + "/fail", content=b"disk full", timeout=10).status_code == 200
    expect(page.locator("[data-role=state]")).to_have_text("down", timeout=LIVE_TIMEOUT_MS)
    expect(row.locator("[data-role=state]")).to_have_text("down", timeout=LIVE_TIMEOUT_MS)
    shot(page, "46-monitor-down")
    shot(listing, "47-monitors")
    monitors = api(serve, site.key, "GET", "/monitors").json()["data"]
    assert [(m["name"], m["status"]) for m in monitors] == [("Nightly backup", "down")]


def test_channels_windows_and_the_status_page_are_set_up_in_the_browser(
    browser: Browser,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    serve = site.serve
    made = api(
        serve, site.key, "POST", "/monitors", json={"name": "Invoice run", "interval_seconds": 600}
    )
    assert made.status_code == 201, made.text
    context = browser.new_context()
    page = context.new_page()
    sign_in_by_link(page, site.link)
    page.goto(serve.url + "/notifications")
    expect(page.get_by_text("every notification goes by e-mail")).to_be_visible()
    page.get_by_label("Name").first.fill("ops hook")
    page.get_by_label("Type").select_option("webhook")
    page.get_by_label("Target").fill(site.sink.url + "/ops")
    page.get_by_role("button", name="Add channel").click()
    expect(page.get_by_role("status")).to_contain_text("The channel is added.")
    page.get_by_role("button", name="Send test to ops hook").click()
    expect(page.get_by_role("status")).to_contain_text("A test notification is on its way")
    # The node's Notifier sends it; the log shows it sent after a reload.
    for _ in range(20):
        if any(r["path"] == "/ops" for r in site.sink.requests()):
            break
        page.wait_for_timeout(250)
    page.reload()
    row = page.locator("tr", has_text="channel.test")
    expect(row.locator(".badge")).to_have_text("sent")
    page.get_by_label("Until (ISO time with offset, e.g. 2027-01-01T12:00:00Z)").fill(
        "2099-01-01T00:00:00Z"
    )
    page.get_by_label("Reason").fill("database upgrade")
    page.get_by_role("button", name="Add window").click()
    expect(page.get_by_role("status")).to_contain_text("The maintenance window is added")
    expect(page.get_by_role("cell", name="database upgrade")).to_be_visible()
    shot(page, "48-notifications")
    page.goto(serve.url + "/status-page")
    page.get_by_label("Public").check()
    page.get_by_label("Invoice run (monitor)").check()
    page.get_by_label("Title").fill("Acme status")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("The status page is saved.")
    shot(page, "49-status-page-settings")
    public = browser.new_page()  # anyone, not signed in
    public.goto(serve.url + "/s/acme")
    expect(public.get_by_role("heading", name="Acme status")).to_be_visible()
    expect(public.locator(".status-item", has_text="Invoice run")).to_be_visible()


def test_an_uptime_check_is_added_and_checked_in_the_browser(
    browser: Browser,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    serve = site.serve
    # Pro: checks every 30 s (free: 300 s).
    # (In a thread of its own: Playwright's event loop runs in this one.)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            sql, site.env["RUNLATER_DATABASE_URL"], "update organizations set tier = 'pro'"
        ).result()
    context = browser.new_context()
    page = context.new_page()
    sign_in_by_link(page, site.link)
    page.goto(serve.url + "/monitors")
    page.get_by_role("link", name="HTTP uptime checks →").click()
    page.get_by_label("Name").fill("Homepage")
    page.get_by_label("URL").fill(site.sink.url + "/status/503")
    page.get_by_label("Every (seconds)").fill("30")
    page.get_by_role("button", name="Add check").click()
    expect(page.get_by_role("status")).to_contain_text("The uptime check is added")
    row = page.locator("tr", has_text="Homepage")
    expect(row.locator("[data-role=state]")).to_have_text("new")
    expect(page.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    # The node's UptimeChecker runs it within its interval; two failures in a row: down.
    expect(row.locator("[data-role=state]")).to_have_text("down", timeout=75_000)
    expect(row).to_contain_text("HTTP 503")
    shot(page, "50-uptime-checks")
