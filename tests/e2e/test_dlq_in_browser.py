"""The dead-letter queue in a real headless Chromium against a real server and a real sink:
failures land on the Failures page live (and their failure callbacks reach the sink once),
the page filters them by URL, retries the selected one (its new attempt reaches the sink) and
deletes the rest. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.e2e.test_dashboard_in_browser import (  # one browser per module, same helpers
    browser,  # noqa: F401 (the fixture)
    shot,
    sign_in_by_link,
)
from tests.e2e.test_live_pages_in_browser import LIVE_TIMEOUT_MS, Site, site  # noqa: F401
from tests.helpers.process import api, wait_until


def test_failures_land_are_filtered_retried_and_deleted(
    browser: Browser,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    serve, link, key, sink = site.serve, site.link, site.key, site.sink
    context = browser.new_context()
    page = context.new_page()
    sign_in_by_link(page, link)
    page.goto(serve.url + "/failures")
    expect(page.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    # Two host names for the one sink, so neither task's host is backed off for the other.
    for name, host in (("charge cards", "127.0.0.1"), ("email receipts", "localhost")):
        created = api(
            serve,
            key,
            "POST",
            "/tasks",
            json={
                "name": name,
                "url": f"http://{host}:{sink.port}/status/500?job={name.split()[0]}",
                "retry_attempts": 0,
                "failure_callback_url": f"http://{host}:{sink.port}/dead/{name.split()[0]}",
            },
        )
        assert created.status_code == 202, created.text
    expect(page.locator("#failure-count")).to_contain_text(
        "2 failed or timed-out executions", timeout=LIVE_TIMEOUT_MS
    )
    # Each failure callback arrives, once.
    wait_until(
        lambda: len([r for r in sink.requests() if r["path"].startswith("/dead/")]) == 2,
        LIVE_TIMEOUT_MS / 1000,
        "the two failure callbacks",
    )
    page.get_by_label("URL contains").fill("job=charge")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#failure-count")).to_contain_text("1 failed or timed-out execution")
    expect(page.get_by_role("heading", name="charge cards")).to_be_visible()
    expect(page.get_by_role("heading", name="email receipts")).to_have_count(0)
    shot(page, "57-dlq-filtered")
    page.locator("tr[data-dead-letter] input[type=checkbox]").check()
    page.get_by_role("button", name="Retry selected").click()
    expect(page.get_by_role("status").filter(has_text="The retries are queued")).to_be_visible()
    expect(page).to_have_url(serve.url + "/failures?url=job%3Dcharge&queue=&status_code=")
    # The new attempt runs, reaches the sink, fails again and lands as attempt 2.
    attempts = page.locator("tr[data-execution] td:nth-child(4)")
    expect(attempts).to_have_text(["2"], timeout=LIVE_TIMEOUT_MS)
    charges = [r for r in sink.requests() if r["path"] == "/status/500?job=charge"]
    assert len(charges) == 2
    page.goto(serve.url + "/failures")
    expect(page.locator("#failure-count")).to_contain_text("2 failed or timed-out executions")
    shot(page, "58-dlq-all")
    page.get_by_role("button", name="Delete all 2 shown").click()
    expect(page.get_by_text("deleted from the dead-letter queue")).to_be_visible()
    expect(page.get_by_text("No failures. Executions that fail")).to_be_visible()
    shot(page, "59-dlq-emptied")
    assert api(serve, key, "GET", "/dlq").json()["data"] == []
    context.close()
