"""Live pages in a real headless Chromium against a real server: a task created through the API
appears on the open tasks page without a reload; a queue paused in one browser shows as paused
in another; after the server is killed and restarted the page reconnects by itself, says so and
shows the current state. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_dashboard_in_browser import (  # one browser per module, same helpers
    bootstrap_link,
    browser,  # noqa: F401 (the fixture)
    node_env,
    shot,
    sign_in_by_link,
)
from tests.helpers.process import Serve, SinkProcess, api, bootstrap, free_port

LIVE_TIMEOUT_MS = 10_000


@dataclass
class Site:
    """One real server on a fresh database, an owner's sign-in link, an API key for "a program",
    and a recording sink; ``restart`` kills the server and starts it on the same port."""

    env: dict[str, str]
    port: int
    link: str
    key: str
    sink: SinkProcess
    serve: Serve

    def restart(self) -> None:
        self.serve.kill()
        self.serve = Serve(self.env, port=self.port).start()


@pytest.fixture
def site(database_url: str) -> Iterator[Site]:
    port = free_port()
    env = node_env(database_url, port)
    link = bootstrap_link(env, "Acme", "owner@acme.test")
    key = bootstrap(env, "Acme")
    sink = SinkProcess()
    running = Site(env, port, link, key, sink, Serve(env, port=port).start())
    try:
        yield running
    finally:
        running.serve.stop()
        sink.close()


def test_tasks_and_queues_update_live_and_the_page_survives_a_server_restart(
    browser: Browser,  # noqa: F811
    site: Site,
) -> None:
    serve, link, key = site.serve, site.link, site.key
    first = browser.new_context()
    page = first.new_page()
    sign_in_by_link(page, link)
    page.goto(serve.url + "/tasks")
    expect(page.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    created = api(
        serve,
        key,
        "POST",
        "/tasks",
        json={
            "name": "created elsewhere",
            "url": "https://example.com/hook",
            "delay": "1h",
            "queue": "imports",
        },
    )
    assert created.status_code == 202, created.text
    expect(page.get_by_text("created elsewhere")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    shot(page, "20-tasks-live")

    # Two browsers on the queues page; one pauses, the other sees it.
    second = browser.new_context(storage_state=first.storage_state())
    other = second.new_page()
    other.goto(serve.url + "/queues")
    expect(other.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    page.goto(serve.url + "/queues")
    page.get_by_role("button", name="Pause imports").click()
    expect(page.get_by_role("status").filter(has_text="The queue is paused")).to_be_visible()
    expect(other.locator('tr[data-queue="imports"] .queue-state')).to_have_text(
        "paused", timeout=LIVE_TIMEOUT_MS
    )
    shot(other, "21-queues-live-paused")

    # Kill the server; change something meanwhile; start it again on the same port.
    other.goto(serve.url + "/tasks")
    expect(other.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    serve.kill()
    expect(other.locator("html[data-live=reconnecting]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(other.locator("#live-status.alert")).to_have_text("Connection lost; reconnecting…")
    shot(other, "22-reconnecting")
    site.restart()
    serve = site.serve
    created = api(
        serve,
        key,
        "POST",
        "/tasks",
        json={
            "name": "made while you were away",
            "url": "https://example.com/x",
            "delay": "1h",
        },
    )
    assert created.status_code == 202
    expect(other.locator("#live-status.notice")).to_have_text("Reconnected.", timeout=20_000)
    expect(other.get_by_text("made while you were away")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    shot(other, "23-reconnected")
    first.close()
    second.close()


def test_failures_appear_live_and_a_bulk_retry_is_watched_as_it_runs(
    browser: Browser,  # noqa: F811
    site: Site,
) -> None:
    serve, link, key, sink = site.serve, site.link, site.key, site.sink
    context = browser.new_context()
    page = context.new_page()
    sign_in_by_link(page, link)
    page.goto(serve.url + "/failures")
    expect(page.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    # Two host names for the one sink: a failing host is backed off for a while, and each
    # task's retry should run at once.
    for name, host in (("export orders", "127.0.0.1"), ("export invoices", "localhost")):
        created = api(
            serve,
            key,
            "POST",
            "/tasks",
            json={
                "name": name,
                "url": f"http://{host}:{sink.port}/status/500",
                "retry_attempts": 0,
            },
        )
        assert created.status_code == 202, created.text
    expect(page.locator("#failure-count")).to_contain_text(
        "2 failed or timed-out executions", timeout=LIVE_TIMEOUT_MS
    )
    expect(page.get_by_text("HTTP 500 · 1 execution")).to_have_count(2)
    shot(page, "24-failures-live")
    page.get_by_role("button", name="Retry all 2 shown").click()
    expect(page.get_by_role("status").filter(has_text="The retries are queued")).to_be_visible()
    # The retries run and fail again: each chain's last attempt is now attempt 2, live.
    attempts = page.locator("tr[data-execution] td:nth-child(4)")
    expect(attempts).to_have_text(["2", "2"], timeout=LIVE_TIMEOUT_MS)
    shot(page, "25-failures-after-retry")
    assert len([r for r in sink.requests() if r["path"] == "/status/500"]) == 4
    context.close()


def test_run_now_on_a_task_page_and_the_execution_finishes_in_place(
    browser: Browser,  # noqa: F811
    site: Site,
) -> None:
    serve, link, key, sink = site.serve, site.link, site.key, site.sink
    created = api(
        serve,
        key,
        "POST",
        "/tasks",
        json={"name": "nightly sync", "url": f"{sink.url}/sync", "delay": "1h"},
    )
    assert created.status_code == 202, created.text
    task_id = created.json()["data"]["task_id"]
    context = browser.new_context()
    page = context.new_page()
    sign_in_by_link(page, link)
    page.goto(f"{serve.url}/tasks/{task_id}")
    expect(page.locator("html[data-live=connected]")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("tr[data-execution]")).to_have_count(1)  # the one due in an hour
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("status").filter(has_text="The task runs now.")).to_be_visible()
    rows = page.locator("tr[data-execution]")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="success")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    shot(page, "26-task-run-now")
    rows.filter(has_text="success").get_by_role("link").click()
    expect(page.get_by_role("heading", name="Request")).to_be_visible()
    expect(page.get_by_text("HTTP 200").first).to_be_visible()
    shot(page, "27-execution")
    assert [r["path"] for r in sink.requests()] == ["/sync"]
    # The task form's cron helper: the next 5 runs and the expression in words.
    page.goto(f"{serve.url}/tasks/new")
    page.get_by_label("Time zone").fill("Europe/Amsterdam")
    page.get_by_label("Cron expression").fill("0 9 * * 1-5")
    expect(page.locator("#cron-preview li")).to_have_count(5)
    expect(page.locator("#cron-preview")).to_contain_text("Monday through Friday")
    expect(page.locator("#cron-preview li").first).to_contain_text("9:00")  # Amsterdam time
    shot(page, "29-task-form-cron-helper")
    page.get_by_role("link", name="Home").click()
    expect(page.locator(".uplot canvas")).to_have_count(2)  # both charts drawn
    expect(page.get_by_label("Last 24 hours")).to_contain_text("1 run")
    shot(page, "28-home")
    context.close()
